"""The composite model computes n_params / FLOPs / CPU memory exactly when it knows the data's shape."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lightning_dnc.search import Evaluation, Objective, StagedSearch
from lightning_dnc.search.core.settings import SearchSettings
from lightning_dnc.search.stages.composite import CompositeGP, CostQuery, GPCostModel, cost_model_for
from lightning_dnc.search.stages.exact_cost_model import UNBUILDABLE_LOG_COST, ExactCostModel
from lightning_dnc.space import MLPSpace, TrainingSpace, complete_config
from lightning_dnc.space.exact_costs import DataShape, exact_costs
from lightning_dnc.validation import SettingError

DATA = DataShape((64,), 10, 1000)
REF = 1e5


def evaluation(config):
    n_params = float(exact_costs("mlp", [complete_config(config)], DATA, "n_params")[0])
    size = sum(config["hidden_mlp"]) + 1
    acc = 0.95 - abs(size - 300) / 3000
    return Evaluation(config=config, best_val_acc=min(acc, 0.999), t_tr=0.1, n_params=n_params)


def settings(**kw):
    base = dict(family="mlp", objective=Objective(wc=1.0, penalize="n_params", n_params_ref=REF), prior_points=3,
                steps=3, explore=100, search_epochs=2, seed=1, stage2_order=(), training_prior_points=2,
                training_steps=2, model="composite", space=MLPSpace(), training_space=TrainingSpace(),
                strategy="joint")
    base.update(kw)
    return SearchSettings(**base)


def test_exact_model_predicts_the_recorded_cost_with_no_variance():
    configs = [complete_config({**c, "family": "mlp"}) for c in MLPSpace().sample(20, seed=4, method="random")]
    model = ExactCostModel("mlp", DATA, "n_params", REF)
    query = CostQuery(candidates=configs, complete=None, observed=[], log_costs=np.zeros(0), shared=None)
    mean, var = model.predict(query)
    recorded = np.array([evaluation(c).n_params for c in configs])
    np.testing.assert_allclose(mean, np.log10(recorded / REF))
    assert np.all(var == 0)


def test_unbuildable_candidates_get_a_prohibitive_cost():
    model = ExactCostModel("mlp", DATA, "n_params", REF)
    model.costs = lambda configs: np.full(len(configs), np.nan)  # what exact_costs gives a config that cannot be built
    query = CostQuery(candidates=[{"hidden_mlp": [8]}], complete=None, observed=[], log_costs=np.zeros(0), shared=None)
    assert model.predict(query)[0][0] == UNBUILDABLE_LOG_COST


def test_cost_model_choice_follows_the_penalty_and_what_is_known():
    n_params = Objective(wc=1.0, penalize="n_params", n_params_ref=REF)
    assert isinstance(cost_model_for(n_params, "mlp", DATA), ExactCostModel)
    assert isinstance(cost_model_for(n_params), GPCostModel)  # no data shape: learned
    assert isinstance(cost_model_for(Objective(wc=1.0, penalize="t_tr", t_tr_ref=0.1)), GPCostModel)  # no data shape
    assert isinstance(cost_model_for(Objective(wc=1.0, penalize="flops"), "mlp", DATA), GPCostModel)  # no reference yet


def test_a_composite_search_with_a_data_shape_computes_its_costs():
    search = StagedSearch.from_settings(settings(data_shape=DATA), MLPSpace(), TrainingSpace())
    while not search.finished:
        for p in search.ask(1):
            search.tell(p.trial_id, evaluation(p.config))
    models = [stage._gp.cost_model for stage in search._stages.values() if isinstance(getattr(stage, "_gp", None), CompositeGP)]
    assert models and all(isinstance(m, ExactCostModel) for m in models if m is not None)
    assert any(isinstance(m, ExactCostModel) for m in models)
    assert math.isfinite(search.result().best.loss)


def test_data_shape_is_checked_and_not_stored_in_the_header():
    with pytest.raises(SettingError, match="data_shape"):
        settings(data_shape=(64,))
    assert "data_shape" not in settings(data_shape=DATA).header_settings()


def test_run_search_fills_the_data_shape_only_where_costs_are_computed_or_featured():
    from lightning_dnc.data import DigitsDataModule
    from lightning_dnc.lightning.search_loop import exact_data_shape

    dm = DigitsDataModule(flatten=True)
    dm.prepare_data()
    dm.setup("fit")
    shape = exact_data_shape(settings(), dm, {"accelerator": "cpu"})
    assert isinstance(shape, DataShape) and shape.input_shape == tuple(dm.input_shape)
    t_tr = settings(objective=Objective(wc=1.0, penalize="t_tr"))  # the features of a measured time
    assert exact_data_shape(t_tr, dm, {"accelerator": "cpu", "precision": "16-mixed"}) == shape
    assert exact_data_shape(settings(model="scalar"), dm, {"accelerator": "cpu"}) is None
    assert exact_data_shape(settings(), dm, {"accelerator": "cpu"}, model_class=object) is None
    assert exact_data_shape(settings(), dm, {"accelerator": "cpu", "precision": "16-mixed"}) is None


@pytest.mark.parametrize("penalize", ["flops", "memory"])
@pytest.mark.parametrize("strategy", ["joint", "revisit", "train-first"])
def test_pool_shortcuts_equal_the_costs_of_the_complete_configurations(strategy, penalize, monkeypatch):
    from lightning_dnc.search.stages import exact_cost_model as ecm
    from lightning_dnc.space import CNNSpace

    data = DataShape((1, 8, 8), 10, 500)
    used = []
    shortcut = ecm.ExactCostModel._shortcut

    def compared(self, query):
        values = shortcut(self, query)
        if values is not None:
            used.append(len(values))
            slow = self.costs(self._configs(query, range(len(query.candidates))))
            np.testing.assert_array_equal(values, slow)
        return values

    monkeypatch.setattr(ecm.ExactCostModel, "_shortcut", compared)
    s = settings(family="cnn", space=CNNSpace(), strategy=strategy, data_shape=data, explore=150,
                 objective=Objective(wc=1.0, penalize=penalize, **{f"{penalize}_ref": 1e6}))
    search = StagedSearch.from_settings(s, CNNSpace(), TrainingSpace())
    rng = np.random.default_rng(0)
    while not search.finished:
        for p in search.ask(1):
            cost = float(exact_costs("cnn", [complete_config(p.config)], data, penalize)[0])
            search.tell(p.trial_id, Evaluation(config=p.config, best_val_acc=float(rng.uniform(0.8, 0.99)),
                                               **{penalize: cost}))
    assert used  # the shortcut ran (and matched) on this strategy's picks (memory: batch sizes from the keys)


def test_a_new_search_and_its_resume_agree_on_the_exact_model():
    from lightning_dnc.data import DigitsDataModule
    from lightning_dnc.lightning.search_loop import exact_data_shape

    dm = DigitsDataModule(flatten=True)
    dm.prepare_data()
    dm.setup("fit")
    new = settings(model=None)  # a new search: the engine fills in the default model later
    assert exact_data_shape(new, dm, {"accelerator": "cpu"}) is not None
    assert exact_data_shape(settings(model=None, strategy="paper"), dm, {"accelerator": "cpu"}) is None
