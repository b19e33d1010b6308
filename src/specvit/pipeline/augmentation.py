"""The noise-augmentation study (config ``augmentation``): how much of each model's scaling with N
is the noise augmentation it gets.

The ViT sees a fresh noise draw of every spectrum each epoch (``training.fresh_noise``), LightGBM
and Ridge one fixed seeded draw (``noise_copies: 1``). For each model group of the study
(``augmentation.models``; by default the first ViT and the first LightGBM group of ``runs``) the
study trains two *arms* at every ``augmentation.n_train`` (by default the two smallest N the
groups share) and seed: the group as declared, and the
group with its augmentation switched: a ViT on one fixed draw (``fresh_noise: false``) or with
fresh draws, a baseline on ``augmentation.noise_copies`` draws of every spectrum or on one. Every arm
is an ordinary run group (``runs.expand_runs``), so the runs are trained and evaluated by the usual
rules; where the declared group already has a run at a study N and seed, the study reuses it (the
same run id and spec). Table and figure: ``specvit.studies.augmentation``.
"""
from __future__ import annotations

from dataclasses import dataclass

from specvit.pipeline.runs import COPY_MODELS, group_specs
from specvit.training.spec import RunSpec

STUDY_MODELS = ("vit", *COPY_MODELS)
GROUP_PREFIX = "aug"


@dataclass(frozen=True)
class Arm:
    """One arm of the study: a model group with a given noise augmentation, its runs (N x seeds)."""

    group: str              # the run group of `runs` the arm derives from
    model: str
    name: str               # run group of the arm's runs (the declared group's name, or aug-<group>-<switch>)
    augmented: bool         # fresh draws every epoch (ViT) or more than one noisy copy (baselines)
    noise_copies: int       # baselines: fixed draws per spectrum; ViT: 1 for one fixed draw, 0 for fresh ones
    runs: tuple[str, ...]


def _is_augmented(group: dict, training: dict) -> bool:
    if group["model"] == "vit":
        return bool({**(training or {}), **(group.get("train") or {})}.get("fresh_noise", True))
    return int(group.get("noise_copies", 1)) > 1


def _switched(group: dict, training: dict, copies: int) -> dict:
    """The group with its augmentation switched (see the module doc), as a run group of its own."""
    if group["model"] == "vit":
        fresh = not _is_augmented(group, training)
        return {**group, "name": f"{GROUP_PREFIX}-{group['name']}-{'fresh' if fresh else 'fixed'}",
                "train": {**(group.get("train") or {}), "fresh_noise": fresh}}
    k = 1 if _is_augmented(group, training) else copies
    return {**group, "name": f"{GROUP_PREFIX}-{group['name']}-k{k}", "noise_copies": k}


def _arm(i: int, group: dict, study: dict, training: dict, n_pixels: int) -> tuple[Arm, dict[str, RunSpec]]:
    swept = {**group, "n_train": list(study["n_train"]), "seeds": list(study["seeds"])}
    specs = group_specs(i, swept, training, n_pixels)
    copies = 0 if group["model"] == "vit" and _is_augmented(group, training) else int(group.get("noise_copies", 1))
    arm = Arm(group=study["group"], model=group["model"], name=group["name"],
              augmented=_is_augmented(group, training), noise_copies=copies, runs=tuple(specs))
    return arm, specs


def _study_groups(config: dict, errors: list[str]) -> list[tuple[int, dict]]:
    """(index in `runs`, group) of `augmentation.models`, or of the first ViT and first LightGBM group."""
    index = {g["name"]: i for i, g in enumerate(config["runs"])}
    names = config["augmentation"]["models"]
    if names is None:
        firsts = [next((g["name"] for g in config["runs"] if g["model"] == m), None) for m in ("vit", "lightgbm")]
        names = [n for n in firsts if n]
    unknown = [n for n in names if n not in index]
    if unknown:
        errors.append(f"config key 'augmentation.models': {unknown} are not run groups; groups: {sorted(index)}")
    chosen = [(index[n], config["runs"][index[n]]) for n in names if n in index]
    wrong = [g["name"] for _, g in chosen if g["model"] not in STUDY_MODELS]
    if wrong:
        errors.append(f"config key 'augmentation.models': {wrong} are not of a model the study compares "
                      f"{list(STUDY_MODELS)}")
    return [(i, g) for i, g in chosen if g["model"] in STUDY_MODELS]


def plan_augmentation(config: dict, n_pixels: int, errors: list[str]) -> tuple[list[Arm], dict[str, RunSpec]]:
    """The arms of the study and the run specs they train ([] and {} when it is off, has no model or
    its groups share fewer than two N); problems go to ``errors``, each naming its config key."""
    study = dict(config["augmentation"])
    if not study["enabled"]:
        return [], {}
    groups = _study_groups(config, errors)
    if study["n_train"] is None:  # the two smallest N the groups share: their runs are reused
        shared = sorted(set.intersection(*(set(g["n_train"]) for _, g in groups))) if groups else []
        if len(shared) < 2:
            return [], {}
        study["n_train"] = shared[:2]
    missing = sorted(set(study["n_train"]) - set(config["data"]["subsets"]))
    if missing:
        errors.append(f"config key 'augmentation.n_train' has N={missing}, which are not in 'data.subsets' "
                      f"{sorted(config['data']['subsets'])}; add them there, or turn the study off "
                      f"('augmentation: {{enabled: false}}')")
        return [], {}
    arms, specs = [], {}
    for i, group in groups:
        for g in (group, _switched(group, config["training"], study["noise_copies"])):
            try:
                arm, arm_specs = _arm(i, g, {**study, "group": group["name"]}, config["training"], n_pixels)
            except ValueError as e:
                errors.append(str(e).replace(f"config key 'runs[{i}]", "config key 'augmentation: runs[", 1))
                continue
            arms.append(arm)
            specs.update(arm_specs)
    return arms, specs
