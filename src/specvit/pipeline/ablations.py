"""Ablations declared in the config, expanded into ordinary run groups (see ``specvit.studies.ablations``
for the declaration and the tables)."""
from __future__ import annotations

import copy

from specvit.physics.grid import N_PIXELS
from specvit.pipeline.errors import ConfigError, messages_of
from specvit.pipeline.runs import expand_runs
from specvit.studies.ablations import KINDS, group_name, variant_of
from specvit.training.spec import RunSpec

# What a variant may override (the keys of a run group, less those the ablation fixes).
VARIANT_FIELDS = ("model", "preset", "vit", "params", "train", "labels", "noise_level", "max_eval_stars")


MERGED_FIELDS = ("vit", "params", "train")  # mappings merged key by key into the base's


DEFAULT_SEEDS = [0, 1, 2]  # an ablation without `seeds`


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key in MERGED_FIELDS and isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = {**out[key], **copy.deepcopy(value)}
        else:
            out[key] = copy.deepcopy(value)
    return out


def ablation_groups(name: str, decl: dict) -> list[dict]:
    """The run groups (as in the config's ``runs`` list) of one declared ablation."""
    key = f"ablations.{name}"
    if name not in KINDS:
        raise ValueError(f"config key '{key}': unknown ablation {name!r}; expected one of {sorted(KINDS)}")
    for field in ("base", "n_train", "variants"):
        if field not in decl:
            raise ValueError(f"config key '{key}.{field}' is required")
    unknown = sorted(set(decl["base"]) - set(VARIANT_FIELDS))
    if unknown:
        raise ValueError(f"config key '{key}.base': unknown field(s) {unknown}; allowed: {list(VARIANT_FIELDS)}")
    if not decl["variants"]:
        raise ValueError(f"config key '{key}.variants' is empty; declare at least one variant")
    groups, seen = [], set()
    for i, variant in enumerate(decl["variants"]):
        vkey = f"{key}.variants[{i}]"
        if "name" not in variant:
            raise ValueError(f"config key '{vkey}.name' is required")
        vname = variant["name"]
        unknown = sorted(set(variant) - set(VARIANT_FIELDS) - {"name"})
        if unknown:
            raise ValueError(f"config key '{vkey}' ({vname}): unknown variant field(s) {unknown}; "
                             f"allowed: {['name', *VARIANT_FIELDS]}")
        if vname in seen:
            raise ValueError(f"config key '{vkey}': variant name {vname!r} is declared twice")
        seen.add(vname)
        group = _merge(decl["base"], {k: v for k, v in variant.items() if k != "name"})
        if "model" not in group:
            raise ValueError(f"config key '{vkey}' ({vname}): no model (set it in the base or the variant)")
        group.update(name=group_name(name, vname), n_train=[int(decl["n_train"])],
                     seeds=list(decl.get("seeds", DEFAULT_SEEDS)))
        groups.append(group)
    return groups


def _ablation_specs(name: str, decl: dict, training_defaults, subsets, n_pixels: int) -> dict[str, RunSpec]:
    """{run_id: RunSpec} of one declared ablation; ConfigError lists its problems."""
    groups = ablation_groups(name, decl)
    errors = []
    if subsets is not None and int(decl["n_train"]) not in set(subsets):
        errors.append(f"config key 'ablations.{name}.n_train' = {decl['n_train']} is not in "
                      f"'data.subsets' {sorted(subsets)}; add it there, or disable the ablation "
                      f"('ablations: {{{name}: null}}', or 'ablations: null' for all)")
    if KINDS[name].test_noise and not decl.get("test_noise"):
        errors.append(f"config key 'ablations.{name}.test_noise' must list the test noise levels")
    try:
        specs = expand_runs(groups, training_defaults, n_pixels)
    except ValueError as e:  # name the ablation rather than the synthetic runs[i]
        specs = {}
        errors += [m.replace("config key 'runs[", f"config key 'ablations.{name}: variants[") for m in messages_of(e)]
    if errors:
        raise ConfigError(errors)
    return specs


def expand_ablations(ablations: dict | None, training_defaults: dict | None = None,
                     subsets=None, *, n_pixels: int = N_PIXELS) -> dict[str, dict[str, RunSpec]]:
    """{ablation: {run_id: RunSpec}} for every declared ablation, variants in declaration order.

    Settings are checked as the config's run groups are (``runs.expand_runs``), with the
    ablation's config key in the message; ``subsets`` (``data.subsets``) must hold each N.
    A ConfigError lists the problems of every ablation.
    """
    out, errors = {}, []
    for name, decl in (ablations or {}).items():
        if decl is None:  # disabled in a config merged over the default
            continue
        try:
            out[name] = _ablation_specs(name, decl, training_defaults, subsets, n_pixels)
        except ValueError as e:
            errors += messages_of(e)
    all_ids = [rid for specs in out.values() for rid in specs]
    if len(set(all_ids)) != len(all_ids):
        errors.append("two ablations declare the same run id")
    if errors:
        raise ConfigError(errors)
    return out


def noise_levels_by_run(ablations_config: dict | None, ablations: dict[str, dict[str, RunSpec]]) -> dict[str, list]:
    """{run_id: test noise levels} of every run whose ablation evaluates it at several (rule evaluate_noise)."""
    return {rid: [float(v) for v in ablations_config[a]["test_noise"]]
            for a, specs in ablations.items() if KINDS[a].test_noise for rid in specs}


def ablation_of(ablations, kind_field: str) -> dict[str, str]:
    """{table (or figure) name: ablation} of the declared ablations; ``kind_field`` 'table' or 'figure'."""
    return {getattr(KINDS[a], kind_field): a for a in ablations}


def run_inputs(ablation: str, specs: dict[str, RunSpec]) -> dict[str, list[str]]:
    """The files of an ablation's runs its table reads (workflow paths under results/runs/)."""
    files = {"metrics": [f"results/runs/{rid}/metrics.json" for rid in specs],
             "predictions": [f"results/runs/{rid}/predictions_pooled.h5" for rid in specs]}
    if KINDS[ablation].test_noise:
        files["noise"] = [f"results/runs/{rid}/metrics_noise.csv" for rid in specs]
    return files


def vit_variants(ablation: str, specs: dict[str, RunSpec]) -> dict[str, dict]:
    """{variant: ViT settings} of an ablation's ViT variants."""
    return {variant_of(s, ablation): s.vit for s in specs.values() if s.model == "vit"}
