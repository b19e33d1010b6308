"""Every model kind behind one door: build an unfitted model from a run spec, load a saved one.

The model modules are imported on first use, so the workflow can import this module to check a
config without loading torch."""
from __future__ import annotations

import importlib
from pathlib import Path

from specvit.models.base import MODEL_JSON, REGISTRY, Regressor, read_model_json
from specvit.training.spec import RunSpec


def build_model(spec: RunSpec, threads: int = 0):
    """An unfitted model of ``spec`` behind the common Regressor interface."""
    if spec.model == "vit":
        from specvit.training.vit_regressor import VitRegressor

        return VitRegressor(labels=spec.labels, vit=spec.vit, train=spec.train)
    if spec.model == "template":
        from specvit.models.template import TemplateFitRegressor

        return TemplateFitRegressor(labels=spec.labels, **{"seed": spec.seed, **spec.params})
    if spec.model == "lightgbm":
        from specvit.models.lightgbm import LightGBMRegressor

        params = {"seed": spec.seed, "num_threads": threads, **spec.params}
        return LightGBMRegressor(labels=spec.labels, **params)
    from specvit.models.ridge import RidgeRegressor

    return RidgeRegressor(labels=spec.labels, **spec.params)


# Modules that register models; load_model imports them on a miss, so a caller that only imports
# this module can still load any saved model.
_PROVIDER_MODULES = ("specvit.models.lightgbm", "specvit.models.ridge", "specvit.training.vit_regressor",
                     "specvit.models.template")


def load_model(directory) -> Regressor:
    """Load any saved model: read ``model.json`` and dispatch on its ``name`` through ``REGISTRY``."""
    directory = Path(directory)
    name = read_model_json(directory)["name"]
    if name not in REGISTRY:
        for mod in _PROVIDER_MODULES:
            try:
                importlib.import_module(mod)
            except ModuleNotFoundError as e:
                if e.name != mod:
                    raise
            if name in REGISTRY:
                break
    if name not in REGISTRY:
        raise ValueError(f"{directory / MODEL_JSON}: unknown model name {name!r}; registered: {sorted(REGISTRY)}")
    return REGISTRY[name].load(directory)
