"""The one entry point that checks a whole config before the first job runs, and what it decides.

``prepare(config)`` lays the config over the schema's defaults (in place), then checks it: the
schema (types, bounds, unknown keys), the cross-key rules a schema cannot state, the run groups,
ablations and studies, and, for the user's own files (``data.source: hdf5``), what cannot apply
to them (``specvit.pipeline.userfiles``). Every problem found goes into one ConfigError, each
line naming its config key. A valid config gives a ``Plan``: the runs, ablations and studies the
rules are built from.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from specvit.physics.grid import N_PIXELS
from specvit.physics.nuisances import nuisance_sets
from specvit.pipeline import targets
from specvit.pipeline.ablations import expand_ablations
from specvit.pipeline.augmentation import Arm, plan_augmentation
from specvit.pipeline.cluster import copies_memory_message, machine_memory_mb
from specvit.pipeline.errors import ConfigError, messages_of
from specvit.pipeline.runs import expand_runs, main_runs, seed_runs
from specvit.pipeline.schema import SCHEMA_FILE, load_schema, merge, schema_messages, with_defaults
from specvit.pipeline.studies import Studies, plan_studies
from specvit.pipeline.userfiles import (
    FileMeta,
    external_messages,
    group_messages,
    path_message,
    read_user_files,
    split_messages,
    study_messages,
)
from specvit.training.spec import RunSpec

REPO = Path(__file__).resolve().parents[3]
DEFAULT_CONFIG = REPO / "config" / "config.yaml"


def consistency_messages(config: dict) -> list[str]:
    """Cross-key checks that a JSON schema cannot express (on a config with its defaults filled)."""
    msgs, data = [], config["data"]
    for k in ("train_mags", "test_mags"):
        lo, hi = data[k]
        if lo > hi:
            msgs.append(f"config key 'data.{k}' must be [bright, faint] with bright <= faint, got {data[k]}")
    for name, prior in (data["labels"] or {}).items():
        if "min" in prior and "max" in prior and not prior["min"] < prior["max"]:
            msgs.append(f"config key 'data.labels.{name}' needs min < max, got min={prior['min']}, max={prior['max']}")
    if data["source"] == "synthetic" and max(data["subsets"]) > data["n_train_pool"]:
        msgs.append(f"config key 'data.subsets' has N={max(data['subsets'])} larger than "
                    f"'data.n_train_pool'={data['n_train_pool']}")
    missing_mags = sorted(set(config["eval"]["pred_vs_true_mags"]) - set(config["eval"]["mags"]))
    if missing_mags:
        msgs.append(f"config key 'eval.pred_vs_true_mags' has {missing_mags}, which are not in 'eval.mags'")
    subsets = set(data["subsets"])
    for i, group in enumerate(config["runs"]):
        missing = sorted(set(group["n_train"]) - subsets)
        if missing:
            msgs.append(f"config key 'runs[{i}].n_train' ({group['name']}) has N={missing}, which are not in "
                        f"'data.subsets' {sorted(subsets)}; add them there")
    msgs += _duplicate_group_messages(config["runs"])
    sim = config["ceiling"]["mmse_sim"]
    if data["source"] == "synthetic" and sim["enabled"] and sim["n_stars"] > data["n_test"]:
        msgs.append(f"config key 'ceiling.mmse_sim.n_stars' ({sim['n_stars']}) exceeds the test stars "
                    f"'data.n_test' ({data['n_test']})")
    try:
        nuisance_sets(config["ceiling"]["nuisances"])
    except ValueError as e:
        msgs.append(str(e))
    if data["source"] == "hdf5":
        msgs += [m for m in (path_message(f"data.{s}", data[s]) for s in targets.SPLITS) if m]
    return msgs


def _duplicate_group_messages(groups: list[dict]) -> list[str]:
    """A run group's name is its model's row in Table 3 and its line in Figure 1: two groups of one
    name would leave one of them out."""
    first: dict[str, int] = {}
    msgs = []
    for i, group in enumerate(groups):
        if group["name"] in first:
            msgs.append(f"config key 'runs[{i}].name' is {group['name']!r}, the name of runs[{first[group['name']]}] "
                        "too; expected unique run-group names (each is one model of Table 3 and Figure 1)")
        first.setdefault(group["name"], i)
    return msgs


def _tolerance_messages(config: dict) -> list[str]:
    from specvit.reporting.checklist import check_tolerances

    try:
        check_tolerances(config["tracking"]["check_paper"]["tolerances"])
    except ValueError as e:
        return [str(e)]
    return []


@dataclass(frozen=True)
class Plan:
    """What a valid config asks the workflow to build."""

    config: dict = field(repr=False)
    runs: dict[str, RunSpec]                     # every run: the run groups' and the ablations'
    group_runs: list[str]                        # the runs of the `runs` groups (scaling, learning curves)
    main_runs: dict[str, str]                    # {group: its largest-N run}: Table 3 and Figure 1
    ablations: dict[str, dict[str, RunSpec]]     # {ablation: {run_id: spec}}
    studies: Studies
    user_files: dict[str, FileMeta] = field(default_factory=dict, repr=False)
    seed_runs: dict[str, list[str]] = field(default_factory=dict)  # {group: its largest-N runs, eval.main_seeds}
    augmentation: list[Arm] = field(default_factory=list)           # the arms of the augmentation study

    def table3_runs(self) -> list[str]:
        """The runs of Table 3 and Figure 1: every declared seed of each group's largest N."""
        return [rid for rid in self.group_runs
                if self.runs[rid].n_train == self.runs[self.main_runs[self.runs[rid].group]].n_train]

    def seed_table_runs(self) -> list[str]:
        """The runs of the seed version of Table 3 and Figure 1, and of the paired model differences."""
        return [rid for rids in self.seed_runs.values() for rid in rids]

    def vit_runs(self) -> list[str]:
        """The ViT runs of the run groups (learning curves, MLflow histories)."""
        return [rid for rid in self.group_runs if self.runs[rid].model == "vit"]

    def all_targets(self) -> list[str]:
        """Everything `rule all` builds."""
        return (targets.data_targets(self.config) + targets.calibration_targets()
                + targets.core_targets(self.runs, self.group_runs) + targets.fairness_targets(self)
                + targets.ablation_targets(self.ablations)
                + targets.study_targets(self.studies) + targets.tracking_targets(self.config))

    def result_targets(self) -> list[str]:
        """Every table and figure of the config except the checklist's own: what the checklist reports on."""
        return targets.result_targets(self.all_targets())


def _groups_of(config: dict, runs: dict[str, RunSpec], ablations: dict) -> list[tuple]:
    """(name, model, labels, where declared, how to turn it off) of every run group and ablation variant."""
    out, index = [], {g["name"]: i for i, g in enumerate(config["runs"])}
    for name, i in index.items():
        spec = next(s for s in runs.values() if s.group == name)
        out.append((name, spec.model, spec.labels, f"runs[{i}]", "remove the group from 'runs'"))
    for ablation, specs in ablations.items():
        for group in dict.fromkeys(s.group for s in specs.values()):
            spec = next(s for s in specs.values() if s.group == group)
            out.append((group, spec.model, spec.labels, f"ablations.{ablation}",
                        f"turn the ablation off with 'ablations: {{{ablation}: null}}'"))
    return out


def _expand(config: dict, files: dict[str, FileMeta], errors: list[str]) -> Plan | None:
    """The plan of a schema-valid config; None (with ``errors`` extended) where it cannot be made."""
    n_pixels = files["train"].wave.size if "train" in files else N_PIXELS
    runs, ablations, failed = {}, {}, []
    try:
        runs = expand_runs(config["runs"], config["training"], n_pixels)
    except ValueError as e:
        failed += messages_of(e)
    try:
        ablations = expand_ablations(config["ablations"], config["training"], config["data"]["subsets"],
                                     n_pixels=n_pixels)
    except ValueError as e:
        failed += messages_of(e)
    if failed:  # the studies build on the runs: checked once the runs can be expanded
        errors += failed
        return None
    mains = main_runs(runs)
    seeds = seed_runs(config["runs"], config["training"], n_pixels, config["eval"]["main_seeds"])
    arms, augmentation = plan_augmentation(config, n_pixels, errors)
    all_runs = {**runs, **{rid: s for specs in ablations.values() for rid, s in specs.items()}}
    for extra in (*seeds.values(), augmentation):  # the same id is the same run, whoever asks for it
        errors += [f"run {rid} is declared twice with different settings" for rid, spec in extra.items()
                   if all_runs.setdefault(rid, spec) != spec]
    errors += _memory_messages(config, all_runs, files, n_pixels)
    try:
        studies = plan_studies(config, all_runs, mains)
    except ValueError as e:
        errors += messages_of(e)
        return None
    return Plan(config, all_runs, list(runs), mains, ablations, studies, files,
                seed_runs={g: list(specs) for g, specs in seeds.items()}, augmentation=arms)


def _val_rows(config: dict) -> int:
    if config["data"]["source"] == "synthetic":
        return int(config["data"]["n_val"])
    import h5py

    try:
        with h5py.File(config["data"]["val"], "r") as f:
            return int(f["flux"].shape[0])
    except (OSError, KeyError):
        return 0  # a broken file has its own message


def _memory_messages(config: dict, runs: dict[str, RunSpec], files, n_pixels: int) -> list[str]:
    """Runs with noisy copies (run-group key or the augmentation study) that would not fit in memory
    ('memory_mb', or this machine's physical memory), each naming the key of its copies."""
    limit, limit_key = config["memory_mb"], "'memory_mb'"
    if limit is None:
        limit, limit_key = machine_memory_mb(), "this machine's physical memory ('memory_mb': null)"
    keys = {g["name"]: f"runs[{i}] ({g['name']}).noise_copies" for i, g in enumerate(config["runs"])}
    n_val, msgs = _val_rows(config), {}
    for spec in sorted(runs.values(), key=lambda s: -s.n_train):  # one message per key: its largest run
        key = keys.get(spec.group, "augmentation.noise_copies")
        msg = copies_memory_message(spec, key, n_pixels=n_pixels, n_val=n_val, limit_mb=limit, limit_key=limit_key)
        if msg:
            msgs.setdefault(key, msg)
    return list(msgs.values())


def prepare(config: dict, schema_path=None) -> Plan:
    """Fill the schema's defaults into ``config`` (in place: Snakemake's config object) and check
    all of it; ConfigError lists every problem, each with its config key. Returns the plan."""
    schema = load_schema(schema_path)
    resolved = with_defaults(config, schema)
    config.clear()
    config.update(resolved)
    msgs = schema_messages(config, schema)
    if msgs:  # the checks below rely on the schema's types
        raise ConfigError(msgs, header=f"invalid config (schema: {SCHEMA_FILE.as_posix()})")
    errors = consistency_messages(config) + _tolerance_messages(config)
    files, file_errors = read_user_files(config)
    errors += file_errors + split_messages(config, files)
    plan = _expand(config, files, errors)
    if plan is not None and files:
        errors += group_messages(_groups_of(config, plan.runs, plan.ablations), files)
        errors += study_messages(config, files, shift_models=plan.studies.shift_models,
                                 shift_vit_run=plan.studies.shift_vit_run)
    if plan is not None:
        errors += external_messages(config, files)
    if errors:
        raise ConfigError(errors)
    return plan


def read_yaml(path) -> dict:
    """A config file's mapping; ConfigError names the file, and the line and column of a YAML error."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError([f"{path} is a directory; expected a YAML config file"], header="unreadable config file")
    try:
        content = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError([f"{path} does not exist"], header="unreadable config file") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = " ".join(str(x) for x in (getattr(e, "context", None), getattr(e, "problem", None)) if x) or str(e)
        raise ConfigError([f"{path}{where}: {what}"], header="invalid YAML") from None
    if content is not None and not isinstance(content, dict):
        raise ConfigError([f"{path} holds a {type(content).__name__}; expected a mapping of config keys"],
                          header="invalid config file")
    return content or {}


def load_config(*files, overrides: dict | None = None, default=DEFAULT_CONFIG, schema_path=None) -> dict:
    """The config the workflow runs with for ``--configfile files... --config overrides``: the schema's
    defaults, config/config.yaml, each file and the overrides laid over each other (not checked)."""
    config: dict = {}
    for path in ([default] if default else []) + list(files):
        config = merge(config, read_yaml(path))
    return with_defaults(merge(config, overrides or {}), load_schema(schema_path))


def main(argv=None) -> int:
    """``python -m specvit.pipeline.config [FILE ...]``: check config files as ``snakemake --configfile
    FILE ...`` would, without Snakemake. Snakemake reads ``--configfile`` files itself, before the
    workflow, and its message for invalid YAML names neither the file nor the line; this does."""
    import sys

    try:
        plan = prepare(load_config(*(sys.argv[1:] if argv is None else argv)))
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 1
    print(f"valid: {len(plan.runs)} runs, {len(plan.all_targets())} targets for rule all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
