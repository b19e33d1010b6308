"""The paper's experiment checklist, generated from our results and the DAG.

The items, their targets and the paper's numbers are a package resource,
``resources/paper_checklist.yaml`` (source: the paper's experiment plan). For each item the
checklist gives its status from Snakemake's own view of the DAG (built / stale / missing /
not in this config), the numbers read from our tables beside the paper's, and the difference.
``compare_with_paper`` judges chosen numbers against tolerances from the config (rule
``check_paper``).

Status comes from ``snakemake --summary`` run on the same Snakefile, working directory and
config (``specvit.reporting.dag_status``): Snakemake's own judgement, the one that decides reruns,
so code, params, input and missing-file changes all count, with nothing re-implemented here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from specvit.reporting.dag_status import BUILT, MISSING, NOT_IN_CONFIG, STALE

PAPER_FILE = "paper_checklist.yaml"
NUMBER_COLUMNS = ["item", "key", "what", "ours", "paper", "approx", "diff", "basis", "source"]
CHECK_COLUMNS = ["key", "what", "ours", "paper", "diff", "tolerance", "result", "basis", "source", "source_status"]
# How our number relates to the paper's: tuned to it (the resource's `calibrated: true`), or not.
CALIBRATED, UNTUNED = "calibrated", "untuned"
TOKENIZATION_TABLE = "results/tables/ablation_tokenization.csv"


def load_paper(path=None) -> dict:
    """The checklist resource (or a file of the same form at ``path``)."""
    text = Path(path).read_text() if path else resources.files("specvit").joinpath("resources", PAPER_FILE).read_text()
    return yaml.safe_load(text)


def paper_numbers(paper: dict) -> dict[str, dict]:
    """{key: {"item", "what", "paper", "approx", "basis"}} of every number of the checklist; ``basis`` is
    ``calibrated`` for a number the spectrum model was tuned to match, else ``untuned``."""
    return {n["key"]: {"item": item["id"], "what": n["what"], "paper": float(n["paper"]),
                       "approx": bool(n.get("approx", False)),
                       "basis": CALIBRATED if n.get("calibrated", False) else UNTUNED}
            for item in paper["items"] for n in item.get("numbers", [])}


def check_tolerances(tolerances: dict, paper: dict | None = None) -> None:
    """Fail early (config key in the message) when a tolerance names a number the checklist does not know."""
    known = paper_numbers(paper or load_paper())
    unknown = sorted(set(tolerances) - set(known))
    if unknown:
        raise ValueError(f"config key 'tracking.check_paper.tolerances' has unknown number keys {unknown}; "
                         f"known keys (from specvit/resources/{PAPER_FILE}): {', '.join(sorted(known))}")


# ---------------------------------------------------------------- our numbers


@dataclass
class Results:
    """The tables our numbers are read from (any may be None where it was not built)."""

    table3: pd.DataFrame | None
    scaling: pd.DataFrame | None
    scaling_summary: pd.DataFrame | None
    ceiling: pd.DataFrame | None
    registry: pd.DataFrame | None
    groups: list[str]  # run groups in config order: ties between groups of one kind go to the first
    tokenization: pd.DataFrame | None = None

    @classmethod
    def read(cls, root, groups) -> Results:
        root = Path(root)

        def csv(rel):
            p = root / rel
            return pd.read_csv(p) if p.is_file() else None

        return cls(csv("results/tables/table3_main.csv"), csv("results/tables/scaling.csv"),
                   csv("results/tables/scaling_summary.csv"), csv("results/tables/ceiling.csv"),
                   csv("results/runs.csv"), list(groups), csv(TOKENIZATION_TABLE))

    def main_group(self, kind: str) -> str | None:
        """The group that stands for a model kind: the largest N among its groups, first in config order."""
        if self.registry is None:
            return None
        reg = self.registry[(self.registry["model"] == kind) & self.registry["in_config"].astype(bool)]
        if not len(reg):
            return None
        max_n = reg.groupby("group")["n_train"].max()
        order = {g: i for i, g in enumerate(self.groups)}
        return sorted(max_n.index, key=lambda g: (-max_n[g], order.get(g, len(order)), g))[0]


def _one(df: pd.DataFrame, column: str) -> float:
    return float(df[column].iloc[0]) if len(df) else math.nan


def our_number(key: str, res: Results) -> tuple[float, str]:
    """(value, source file) of a number key of the checklist; NaN where we have no such number."""
    name, _, arg = key.partition("@")
    kind, _, what = name.partition(".")
    if kind == "ceiling":
        if res.ceiling is None or what != "median5d":
            return math.nan, "results/tables/ceiling.csv"
        c = res.ceiling
        rows = c[(c["kind"] == "median") & (c["dims"] == "5d") & np.isclose(c["mag"], float(arg))]
        return _one(rows, "r2"), "results/tables/ceiling.csv"
    if kind == "ablation":
        return ablation_number(what, arg, res)
    group = res.main_group(kind)
    if what in ("pooled.r2", "pooled.mae", "sweep.r2"):
        src = "results/tables/table3_main.csv"
        if group is None or res.table3 is None:
            return math.nan, src
        t = res.table3[res.table3["model"] == group]
        if what.startswith("pooled"):
            return _one(t[t["view"] == "pooled"], what.split(".")[1]), src
        return _one(t[(t["view"] == "sweep") & np.isclose(t["mag"], float(arg))], "r2"), src
    if what == "gap":
        ceiling, _ = our_number(f"ceiling.median5d@{arg}", res)
        model, _ = our_number(f"{kind}.sweep.r2@{arg}", res)
        return ceiling - model, "results/tables/table3_main.csv"
    if what in ("scaling.r2", "scaling.gain"):
        src = "results/tables/scaling.csv"
        if group is None or res.scaling is None:
            return math.nan, src
        s = res.scaling[res.scaling["model"] == group].groupby("n_train")["r2"].mean()

        def at(n):
            return float(s[int(n)]) if int(n) in s.index else math.nan

        if what == "scaling.r2":
            return at(arg), src
        lo, hi = arg.split(":")
        return at(hi) - at(lo), src
    if what in ("slope", "overtakes_lightgbm_at_n"):
        src = "results/tables/scaling_summary.csv"
        if group is None or res.scaling_summary is None:
            return math.nan, src
        column = "slope_r2_per_dex" if what == "slope" else what
        return _one(res.scaling_summary[res.scaling_summary["model"] == group], column), src
    if what == "best_epoch":
        src = "results/runs.csv"
        if group is None:
            return math.nan, src
        reg = res.registry[(res.registry["group"] == group) & res.registry["in_config"].astype(bool)]
        return _one(reg.sort_values(["n_train", "seed"], ascending=[False, True]), "best_epoch"), src
    return math.nan, ""  # a number we have no reader for: shown as missing


def ablation_number(what: str, arg: str, res: Results) -> tuple[float, str]:
    """Numbers of the tokenization ablation (P0.5), for the runs set up as the paper's were: C1D
    tokens, stride = patch, the default init and no token normalisation.

    ``tokenization.best_val_r2``: the best validation R² of any C1D run of the ablation (runs.csv);
    ``tokenization.r2@patch<P>``: the ablation table's mean test R² over seeds at patch P."""
    if what == "tokenization.best_val_r2":
        reg = res.registry
        if reg is None or "vit.tokenizer" not in reg:
            return math.nan, "results/runs.csv"
        runs = reg[reg["group"].str.startswith("abl-tokenization-") & (reg["vit.tokenizer"] == "C1D")
                   & reg["in_config"].astype(bool)]
        return (float(runs["val_r2"].max()) if len(runs) else math.nan), "results/runs.csv"
    t = res.tokenization
    if what != "tokenization.r2" or not arg.startswith("patch") or t is None:
        return math.nan, TOKENIZATION_TABLE
    patch = int(arg.removeprefix("patch"))
    rows = t[(t["tokenizer"] == "C1D") & (t["patch"] == patch) & (t["stride"] == patch) & (t["init"] == "lecun")
             & (t["token_norm"] == "none")]
    return _one(rows, "r2_mean"), TOKENIZATION_TABLE


def numbers_table(paper: dict, res: Results) -> pd.DataFrame:
    """Every number of the checklist: ours, the paper's, ours − paper."""
    rows = []
    for key, p in paper_numbers(paper).items():
        ours, src = our_number(key, res)
        rows.append({"item": p["item"], "key": key, "what": p["what"], "ours": ours, "paper": p["paper"],
                     "approx": p["approx"], "diff": ours - p["paper"], "basis": p["basis"], "source": src})
    return pd.DataFrame(rows, columns=NUMBER_COLUMNS)


# ---------------------------------------------------------------- documents


def _num(v, approx=False, digits=3) -> str:
    """R²-like numbers with 3 decimals; counts (epochs, N) as integers."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    v = float(v)
    text = f"{v:,.0f}" if abs(v) >= 10 and v.is_integer() else f"{v:.{digits}f}"
    return ("~" if approx else "") + text


def _diff(v) -> str:
    return "–" if v is None or math.isnan(v) else f"{v:+.3f}"


def checklist_markdown(paper: dict, numbers: pd.DataFrame, statuses: dict[str, str], readiness: dict[str, str],
                       config_hash: str, config_targets) -> str:
    """The paper's checklist with our status and numbers (``results/paper_checklist.md``)."""
    lines = ["# Paper checklist (generated)", "",
             f"Generated by the workflow (rule `paper_checklist`) for config `{config_hash}`; do not edit. "
             f"Paper numbers: {paper['source']}. Status is Snakemake's own view of each item's targets "
             "(`snakemake --summary`) when this file was made: built, stale (Snakemake would rebuild it), "
             "missing (in this config, not built), not in this config (the config does not ask for it). "
             "For the live status run `snakemake check_paper`.", ""]
    for priority in ("P0", "P1", "P2"):
        items = [i for i in paper["items"] if i["priority"] == priority]
        if not items:
            continue
        lines += [f"## {priority}", ""]
        for item in items:
            lines += [f"### {item['id']} {item['title']} — **{statuses[item['id']]}**", ""]
            if item["targets"]:
                conf = set(config_targets)
                lines.append("Targets: " + ", ".join(f"`{t}`" + ("" if t in conf else " (not in this config)")
                                                     for t in item["targets"]))
                lines.append("")
            rows = numbers[numbers["item"] == item["id"]]
            if len(rows):
                lines += ["| number | ours | paper | ours − paper |", "|---|---|---|---|"]
                for r in rows.itertuples(index=False):
                    what = r.what + (" (calibrated: the model was tuned to it)" if r.basis == CALIBRATED else "")
                    lines.append(f"| {what} | {_num(r.ours)} | {_num(r.paper, r.approx)} | {_diff(r.diff)} |")
                lines.append("")
    lines += ["## Paper-readiness checklist (minimum set)", "", "| # | item | section | status |", "|---|---|---|---|"]
    for r in paper["readiness"]:
        lines.append(f"| {r['n']} | {r['item']} | {r['section']} | {readiness[str(r['n'])]} |")
    return "\n".join(lines) + "\n"


def readiness_status(paper: dict, statuses: dict[str, str], provenance: str) -> dict[str, str]:
    out = {}
    for r in paper["readiness"]:
        states = [provenance if c == "provenance" else statuses[c] for c in r["covers"]]
        out[str(r["n"])] = next((s for s in (NOT_IN_CONFIG, MISSING, STALE) if any(x.startswith(s) for x in states)),
                                BUILT)
    return out


def compare_with_paper(numbers: pd.DataFrame, tolerances: dict, file_status: dict | None = None) -> pd.DataFrame:
    """PASS where |ours − paper| <= tolerance, FAIL where it is larger, MISSING where we have no number;
    a tolerance of None leaves the number out (config files merge tolerances, so they cannot delete one)."""
    rows = []
    by_key = numbers.set_index("key")
    for key, tol in tolerances.items():
        if tol is None:
            continue
        r = by_key.loc[key]
        diff = float(r["diff"])
        result = "MISSING" if math.isnan(diff) else ("PASS" if abs(diff) <= tol + 1e-12 else "FAIL")
        rows.append({"key": key, "what": r["what"], "ours": r["ours"], "paper": r["paper"], "diff": diff,
                     "tolerance": float(tol), "result": result, "basis": r["basis"], "source": r["source"],
                     "source_status": (file_status or {}).get(r["source"], "")})
    return pd.DataFrame(rows, columns=CHECK_COLUMNS)


def check_text(check: pd.DataFrame) -> str:
    """The pass/fail table as plain text for the terminal."""
    shown = check.assign(ours=check["ours"].map(_num), paper=check["paper"].map(_num), diff=check["diff"].map(_diff),
                         tolerance=check["tolerance"].map(lambda t: f"±{t:g}"))
    passed = check["result"] == "PASS"
    n_pass, n_calibrated = int(passed.sum()), int((passed & (check["basis"] == CALIBRATED)).sum())
    body = shown[["result", "key", "ours", "paper", "diff", "tolerance", "basis", "source_status"]].to_string(
        index=False)
    return (f"{body}\n\n{n_pass} of {len(check)} numbers within tolerance of the paper's: {n_pass - n_calibrated} "
            f"reproduced (untuned), {n_calibrated} calibrated (the model was tuned to them, so they agree by "
            "construction)")
