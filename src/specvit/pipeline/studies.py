"""The studies of the config (``attribution``, ``pretrain``, ``domain_shift``, ``eval.external``,
``nuisance_study``) as the workflow runs them: which trained runs they use, their trainer settings,
seeds and run specs.

The studies' training jobs are described by the run specs they train (``pretrain_spec``,
``shift_finetune_spec``), so the cluster sizing treats them like the core runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from specvit.models.vit_config import PRESETS as VIT_PRESETS
from specvit.physics.labels import LABEL_NAMES
from specvit.physics.nuisances import NuisanceSet
from specvit.pipeline.errors import ConfigError
from specvit.pipeline.seeds import stream_seed
from specvit.pipeline.userfiles import path_message
from specvit.training.spec import RunSpec, run_id

STUDIES_DIR = "results/studies"
PRETRAIN_DIR = f"{STUDIES_DIR}/pretrain/pretrained"
SMALL_SETTINGS = ("finetune", "scratch")
NUISANCE_DIR = f"{STUDIES_DIR}/nuisance"
NUISANCE_MODELS = ("vit", "lightgbm")  # what the nuisance study can train: its first ViT and LightGBM groups


def small_run_dir(setting: str, n, seed) -> str:
    """Folder of a fine-tune or from-scratch run of the pre-train -> fine-tune study."""
    return f"{STUDIES_DIR}/pretrain/{setting}-N{n}-s{seed}"


def _first_group_run(config: dict, main_runs: dict[str, str], model: str) -> str | None:
    """The main (largest-N) run of the first run group of ``model``, or None."""
    for group in config["runs"]:
        if group["model"] == model:
            return main_runs[group["name"]]
    return None


def _attribution_run(config, runs, main_runs, errors) -> str | None:
    """`attribution.run`, or the first ViT group's largest-N run."""
    rid = config["attribution"]["run"]
    if rid is None:
        return _first_group_run(config, main_runs, "vit")
    if rid not in runs or runs[rid].model != "vit":
        vits = sorted(r for r, s in runs.items() if s.model == "vit")
        errors.append(f"config key 'attribution.run': {rid!r} is not a ViT run of this config; ViT runs: {vits}")
        return None
    return rid


def _shift_models(config, runs, main_runs, errors) -> dict[str, str]:
    """{group: main run} of the models tested under shift (`domain_shift.models`, or the first ViT and
    the first LightGBM group)."""
    names = config["domain_shift"]["models"]
    if names is None:
        firsts = (_first_group_run(config, main_runs, m) for m in ("vit", "lightgbm"))
        return {runs[r].group: r for r in firsts if r}
    unknown = [n for n in names if n not in main_runs]
    if unknown:
        errors.append(f"config key 'domain_shift.models': {unknown} are not run groups; groups: {sorted(main_runs)}")
    return {n: main_runs[n] for n in names if n in main_runs}


def _pretrain_n(config, errors) -> int:
    n, subsets = config["pretrain"]["n_pretrain"], config["data"]["subsets"]
    if n is None:
        return max(subsets)
    if n not in subsets:
        errors.append(f"config key 'pretrain.n_pretrain' = {n} is not in 'data.subsets' {sorted(subsets)}")
    return n


def _pool_messages(config) -> list[str]:
    """Study subsets larger than the synthetic training pool, and external files that do not exist."""
    msgs, ds = [], config["domain_shift"]
    if config["data"]["source"] == "synthetic":
        pool = config["data"]["n_train_pool"]
        for key, values in (("pretrain.n_finetune", config["pretrain"]["n_finetune"]),
                            ("domain_shift.finetune.n_train", [ds["finetune"]["n_train"]])):
            if max(values) > pool:
                msgs.append(f"config key '{key}' has N={max(values)}, more than 'data.n_train_pool'={pool}")
    for path in config["eval"]["external"]:
        if not Path(path).is_file():
            msgs.append(path_message("eval.external", path))  # missing, or a directory
    return msgs


def _nuisance_models(config, runs, main_runs, errors) -> dict[str, str]:
    """{group: main run} of the models the nuisance study retrains on its data (`nuisance_study.models`,
    or the first ViT and the first LightGBM group); none for the user's own data (the study simulates
    its spectra with the built-in model)."""
    if config["data"]["source"] != "synthetic":
        return {}
    names = config["nuisance_study"]["models"]
    if names is None:
        firsts = (_first_group_run(config, main_runs, m) for m in NUISANCE_MODELS)
        return {runs[r].group: r for r in firsts if r}
    unknown = [n for n in names if n not in main_runs]
    other = [n for n in names if n in main_runs and runs[main_runs[n]].model not in NUISANCE_MODELS]
    if unknown:
        errors.append(f"config key 'nuisance_study.models': {unknown} are not run groups; groups: {sorted(main_runs)}")
    if other:
        errors.append(f"config key 'nuisance_study.models': {other} are not ViT or LightGBM groups")
    return {n: main_runs[n] for n in names if n in main_runs and n not in other}


def nuisance_set_messages(config: dict) -> list[str]:
    """The nuisances of `data.nuisances` and `nuisance_study.nuisances` as NuisanceSets; the study's set must be
    one of `ceiling.nuisances` (where that key exists), so that ceiling.csv has its ceiling."""
    msgs = []
    for key, cfg in (("data.nuisances", config["data"].get("nuisances")),
                     ("nuisance_study.nuisances", config["nuisance_study"]["nuisances"])):
        try:
            cfg is None or NuisanceSet.from_config(cfg)
        except ValueError as e:
            msgs.append(f"config key '{key}': {e}")
    study = config["nuisance_study"]
    if not study["enabled"] or config["data"]["source"] != "synthetic":
        return msgs
    ceiling_sets = config.get("ceiling", {}).get("nuisances")
    if ceiling_sets is not None and not msgs and NuisanceSet.from_config(study["nuisances"]) not in [
            NuisanceSet.from_config(c) for c in ceiling_sets]:
        msgs.append(f"config key 'nuisance_study.nuisances' {study['nuisances']} is not one of 'ceiling.nuisances': "
                    "add it there, so that ceiling.csv holds the study's nuisance-aware ceiling")
    return msgs


@dataclass(frozen=True)
class Studies:
    """What the studies' rules need, decided once when the workflow loads the config."""

    config: dict = field(repr=False)
    runs: dict[str, RunSpec] = field(repr=False)
    attribution_run: str | None
    shift_models: dict[str, str]       # {group: main run id}
    shift_vit: str | None              # group of the ViT fine-tuned on shifted data
    shift_vit_run: str | None
    pretrain_n: int
    nuisance_models: dict[str, str] = field(default_factory=dict)  # {group: main run id}

    @property
    def shifts(self) -> tuple[str, ...]:
        """The shifts of `domain_shift.severities` (the schema's keys; specvit.studies.shifts.SHIFTS)."""
        return tuple(self.config["domain_shift"]["severities"])

    @property
    def pretrain_seed(self) -> int:
        return int(self.config["pretrain"]["seeds"][0])

    @property
    def small_runs(self) -> list[tuple[str, int, int]]:
        """(setting, N, seed) of every fine-tune and from-scratch run."""
        pre = self.config["pretrain"]
        return [(s, int(n), int(seed)) for s in SMALL_SETTINGS for n in pre["n_finetune"] for seed in pre["seeds"]]

    def seed(self, stream: str) -> int:
        return stream_seed(self.config, stream)

    def pretrain_vit(self) -> dict:
        cfg = self.config["pretrain"]
        return {**VIT_PRESETS[cfg["preset"]], **(cfg["vit"] or {})}

    def pretrain_train(self, setting: str, seed) -> dict:
        """Trainer settings: `training` with the study's overrides; fine-tune and scratch runs share
        `small_train` (the same budget), the fine-tune its own learning rate."""
        cfg = self.config["pretrain"]
        over = cfg["pretrain_train"] if setting == "pretrained" else cfg["small_train"]
        lr = {"lr": cfg["finetune_lr"]} if setting == "finetune" else {}
        return {**self.config["training"], **(over or {}), **lr, "seed": int(seed)}

    def shift_finetune_train(self) -> dict:
        """Trainer settings of the short fine-tune on shifted data: the ViT run's, with the study's epochs and
        lr, and no step budget (``domain_shift.finetune.epochs`` is the budget)."""
        ft = self.config["domain_shift"]["finetune"]
        return {**self.runs[self.shift_vit_run].train, "epochs": ft["epochs"], "lr": ft["lr"], "min_steps": 0}

    def pretrain_spec(self, setting: str, n, seed) -> RunSpec:
        """The pre-training (all five labels), a fine-tune or a scratch run (log g), as a run spec."""
        labels = tuple(LABEL_NAMES) if setting == "pretrained" else ("logg",)
        return RunSpec(f"pretrain-{setting}-N{n}-s{seed}", f"pretrain-{setting}", "vit", int(n), int(seed),
                       labels=labels, vit=self.pretrain_vit(), train=self.pretrain_train(setting, seed))

    def shift_finetune_spec(self, shift: str) -> RunSpec:
        """The fine-tune of the ViT inside a shift's job (its evaluations are small beside it)."""
        n = self.config["domain_shift"]["finetune"]["n_train"]
        return RunSpec(f"shift-{shift}-finetune-N{n}-s0", f"shift-{shift}-finetune", "vit", int(n), 0,
                       vit=self.runs[self.shift_vit_run].vit, train=self.shift_finetune_train())

    def finetune_inputs(self, setting: str, data: dict[str, str]) -> dict[str, str]:
        """Inputs of a fine-tune or scratch run: the splits, and the pre-trained model for a fine-tune."""
        return {**data, **({"init": f"{PRETRAIN_DIR}/model/model.json"} if setting == "finetune" else {})}

    @property
    def nuisance_runs(self) -> dict[str, RunSpec]:
        """{run id: spec} of the nuisance study's runs: each model group's main run, trained on the study's
        `nuisance_study.n_train` spectra with nuisances (ids nuisance-<group>-N<n>-s<seed>)."""
        n = int(self.config["nuisance_study"]["n_train"])
        out = {}
        for group, main in self.nuisance_models.items():
            spec = self.runs[main]
            rid = run_id(f"nuisance-{group}", n, spec.seed)
            out[rid] = replace(spec, run_id=rid, group=f"nuisance-{group}", n_train=n)
        return out

    @property
    def nuisance_clean_runs(self) -> dict[str, str]:
        """{group: run id} of the clean comparison: the group's run at the study's N and seed where the
        group has one, else its main run."""
        n = int(self.config["nuisance_study"]["n_train"])
        out = {}
        for group, main in self.nuisance_models.items():
            same_n = run_id(group, n, self.runs[main].seed)
            out[group] = same_n if same_n in self.runs else main
        return out

    def shift_inputs(self, data: dict[str, str]) -> dict:
        """Inputs of a shift's job: the test split and the models; the ViT and its training data to fine-tune."""
        models = [f"results/runs/{r}/model/model.json" for r in self.shift_models.values()]
        out = {"test": data["test"], "models": models}
        if self.shift_vit_run:
            out.update(train=data["train"], val=data["val"], vit=f"results/runs/{self.shift_vit_run}/model/model.json")
        return out


def plan_studies(config: dict, runs: dict[str, RunSpec], main_runs: dict[str, str]) -> Studies:
    """The studies of ``config`` over its expanded runs; ConfigError lists every problem."""
    errors = _pool_messages(config) + nuisance_set_messages(config)
    attribution = _attribution_run(config, runs, main_runs, errors)
    shift_models = _shift_models(config, runs, main_runs, errors)
    shift_vit = next(((g, r) for g, r in shift_models.items() if runs[r].model == "vit"), (None, None))
    pretrain_n = _pretrain_n(config, errors)
    if config["pretrain"]["preset"] not in VIT_PRESETS:
        errors.append(f"config key 'pretrain.preset': unknown preset {config['pretrain']['preset']!r}; "
                      f"known: {sorted(VIT_PRESETS)}")
    nuisance_models = _nuisance_models(config, runs, main_runs, errors)
    if errors:
        raise ConfigError(errors)
    return Studies(config, runs, attribution, shift_models, shift_vit[0], shift_vit[1], pretrain_n,
                   nuisance_models=nuisance_models)
