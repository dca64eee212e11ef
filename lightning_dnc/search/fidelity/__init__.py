"""How long a candidate trains: rungs, promotions and the multi-fidelity stages."""
