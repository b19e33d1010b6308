"""Run groups of the config expanded into one spec per training run, and the run that stands for
each group.

A run group in the config names a model and the values to sweep::

    runs:
      - {name: vit-tiny, model: vit, preset: tiny, n_train: [2000, 50000], seeds: [0]}
      - {name: lightgbm, model: lightgbm, params: {num_leaves: 63}, n_train: [2000, 50000]}

Each (group, N, seed) is one run with the readable, stable id ``{group}-N{n}-s{seed}``
(``specvit.training.spec``), trained by ``specvit.training.run`` into ``results/runs/<run_id>/``.
"""
from __future__ import annotations

from specvit.physics.grid import N_PIXELS
from specvit.pipeline.errors import ConfigError
from specvit.training.factory import build_model
from specvit.training.spec import RunSpec, run_id

MODELS = ("vit", "lightgbm", "ridge", "template")
COPY_MODELS = ("lightgbm", "ridge")  # models that train on fixed noisy draws (run-group key noise_copies)
LEARNED = ("vit", "lightgbm", "ridge")  # models that learn from the training set: their seeds matter


def group_specs(i: int, g: dict, training_defaults: dict | None, n_pixels: int) -> dict[str, RunSpec]:
    """{run_id: RunSpec} of the i-th run group; ValueError names the group's config key."""
    from specvit.models.template_config import template_settings
    from specvit.models.vit_config import PRESETS, ViTConfig  # torch-free: the workflow imports this module
    from specvit.training.config import TrainConfig

    key = f"runs[{i}] ({g.get('name')})"
    model = g["model"]
    if model not in MODELS:
        raise ValueError(f"config key '{key}.model': unknown model {model!r}; expected one of {MODELS}")
    copies = g.get("noise_copies", 1)
    if copies != 1 and model not in COPY_MODELS:
        raise ValueError(f"config key '{key}.noise_copies' = {copies}: noisy copies are for {list(COPY_MODELS)} "
                         "(a ViT draws fresh noise every epoch, or one fixed draw with "
                         "'train: {fresh_noise: false}')")
    vit: dict = {}
    train: dict = {}
    try:
        if model == "vit":
            preset = g.get("preset", "tiny")
            if preset not in PRESETS:
                raise ValueError(f"unknown preset {preset!r}; known presets: {sorted(PRESETS)}")
            vit = {**PRESETS[preset], **(g.get("vit") or {})}
            ViTConfig.from_dict({**vit, "n_pixels": n_pixels, "labels": tuple(g.get("labels", ["logg"]))})
            train = {**(training_defaults or {}), **(g.get("train") or {})}
            # the ViT draws its training noise in the trainer: at the group's noise level (the key
            # is written only when it differs, so the specs of existing runs stay as they were)
            if float(g.get("noise_level", 1.0)) != float(train.get("noise_level", 1.0)):
                train["noise_level"] = float(g["noise_level"])
            TrainConfig.from_dict(train)
        elif model == "template":
            template_settings(g.get("labels", ["logg"]), **{"seed": 0, **(g.get("params") or {})})
        else:
            build_model(RunSpec("check", g["name"], model, 1, 0, params=dict(g.get("params") or {})))
    except (TypeError, ValueError) as e:
        raise ValueError(f"config key '{key}': {e}") from None
    specs: dict[str, RunSpec] = {}
    for n in g["n_train"]:
        for seed in g.get("seeds", [0]):
            rid = run_id(g["name"], int(n), int(seed))
            if rid in specs:
                raise ValueError(f"config key '{key}': run id {rid!r} is declared twice")
            specs[rid] = RunSpec(
                run_id=rid, group=g["name"], model=model, n_train=int(n), seed=int(seed),
                noise_level=float(g.get("noise_level", 1.0)), labels=tuple(g.get("labels", ["logg"])),
                vit=vit, params=dict(g.get("params") or {}),
                train={**train, "seed": int(seed)} if model == "vit" else {},
                max_eval_stars=g.get("max_eval_stars"), noise_copies=int(copies),
            )
    return specs


def expand_runs(groups: list[dict], training_defaults: dict | None = None,
                n_pixels: int = N_PIXELS) -> dict[str, RunSpec]:
    """{run_id: RunSpec} for every group x N x seed of the config's ``runs`` list.

    Model, preset, ViT (at ``n_pixels`` pixels per spectrum) and trainer settings are checked here,
    when the workflow starts, so a typo fails at once with the config key in the message instead
    of hours later in a job; a ConfigError lists the problems of every group.
    """
    specs: dict[str, RunSpec] = {}
    errors = []
    for i, g in enumerate(groups or []):
        try:
            group = group_specs(i, g, training_defaults, n_pixels)
        except ValueError as e:
            errors.append(str(e))
            continue
        twice = sorted(set(specs) & set(group))
        if twice:
            errors.append(f"config key 'runs[{i}] ({g.get('name')})': run id(s) {twice} are declared twice")
        specs.update(group)
    if errors:
        raise ConfigError(errors)
    return specs


def main_runs(specs: dict[str, RunSpec]) -> dict[str, str]:
    """{group: run_id} of the run that represents each group: its largest N, lowest seed."""
    best: dict[str, RunSpec] = {}
    for spec in specs.values():
        cur = best.get(spec.group)
        if cur is None or (spec.n_train, -spec.seed) > (cur.n_train, -cur.seed):
            best[spec.group] = spec
    return {group: spec.run_id for group, spec in best.items()}


def seed_runs(groups: list[dict], training_defaults: dict | None, n_pixels: int,
              seeds) -> dict[str, dict[str, RunSpec]]:
    """{group: {run_id: spec}} at each group's largest N: its declared seeds and, for a model that
    learns from the training set (``LEARNED``; the template fit's seed only picks its starts), the
    ``seeds`` of ``eval.main_seeds`` besides. A run is the group's spec at that seed, with the id the
    group would give it, so a seed both lists is one run."""
    out = {}
    for i, g in enumerate(groups or []):
        own = [int(s) for s in g.get("seeds", [0])]
        extra = [int(s) for s in seeds] if g["model"] in LEARNED else []
        group = {**g, "n_train": [max(g["n_train"])], "seeds": sorted(set(own + extra))}
        out[g["name"]] = group_specs(i, group, training_defaults, n_pixels)
    return out
