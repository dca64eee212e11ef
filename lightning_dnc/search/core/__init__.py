"""The engine's core: evaluation and trial records, the objective, settings, the ask/tell engine
(:class:`~lightning_dnc.search.core.engine.StagedSearch`) and the result it builds."""
