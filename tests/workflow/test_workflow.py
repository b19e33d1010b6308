"""The Snakemake workflow end to end on config/smoke.yaml, run from a temporary working
directory (--directory) so nothing is written into the checkout."""
import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_studies_workflow import study_job_counts

from conftest import REPO, copy_build, run_snakemake
from specvit.pipeline.config import load_config, prepare

pytestmark = pytest.mark.workflow

SMOKE = REPO / "config" / "smoke.yaml"
SPLITS = ("train", "val", "test")
SMOKE_N = {"train": 600, "val": 200, "test": 200}
SUBSETS = (200, 400, 600)

# The foundation stage's targets (later stages add theirs).
DATA_TARGETS = ([f"results/data/{s}.h5" for s in SPLITS]
                + [f"results/data/{s}.summary.json" for s in SPLITS]
                + [f"results/data/subsets/N{n}.npy" for n in SUBSETS])
CALIBRATION_TARGETS = ["results/calibration/ceiling_vs_paper.csv", "results/calibration/snr_vs_mag.csv",
                       "results/figures/spectra_examples.pdf", "results/figures/spectra_examples.png"]
SMOKE_RUNS = ([f"{group}-N{n}-s0" for group in ("vit-tiny", "lightgbm", "ridge") for n in (200, 600)]
              + ["template-N200-s0"])
RUN_TARGETS = [f"results/runs/{run}/metrics.json" for run in SMOKE_RUNS]
CORE_TARGETS = (["results/tables/ceiling.csv", "results/tables/scaling.csv", "results/tables/scaling_summary.csv"]
                + [f"results/tables/table3_main.{ext}" for ext in ("csv", "md", "tex")]
                + [f"results/figures/{stem}.{ext}" for stem in ("fig1_r2_vs_snr", "fig3_scaling", "pred_vs_true",
                                                               "learning_curves") for ext in ("pdf", "png")])
# The fair comparison: Table 3 and Figure 1 over seeds (eval.main_seeds [0, 1]), the paired model
# differences, the template's ceilings on its 6 stars, the augmentation study (N 200, 600; 2 copies).
SEED_RUNS = [f"{group}-N600-s1" for group in ("vit-tiny", "lightgbm", "ridge")]
AUG_RUNS = [f"aug-{arm}-N{n}-s0" for arm in ("vit-tiny-fixed", "lightgbm-k2") for n in (200, 600)]
FAIR_TARGETS = ([f"results/tables/{stem}.{ext}" for stem in ("table3_seeds", "model_differences", "augmentation")
                 for ext in ("csv", "md", "tex")]
                + ["results/tables/augmentation_slopes.csv", "results/tables/ceiling_scored_stars.csv"]
                + [f"results/figures/{stem}.{ext}" for stem in ("fig1_r2_vs_snr_seeds", "fig_augmentation")
                   for ext in ("pdf", "png")])


def job_counts(output):
    """{rule: count} from the 'Job stats' table of a dry run."""
    table = output.split("Job stats:", 1)[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m[1] != "total"}


def ablation_runs(cfg):
    """{ablation: {run_id: spec}} of a config file laid over the defaults, as the Snakefile sees it."""
    from specvit.pipeline.ablations import expand_ablations

    merged = load_config(REPO / "config" / cfg)
    return expand_ablations(merged["ablations"], merged["training"], merged["data"]["subsets"])


def test_lint_is_clean(tmp_path):
    for cfg in ("config.yaml", "paper.yaml", "smoke.yaml"):
        r = run_snakemake(tmp_path, "--lint", "--configfile", REPO / "config" / cfg)
        assert r.returncode == 0, r.stdout
        assert "Lints for" not in r.stdout, r.stdout


# The workflow as Snakemake loads it: {rule: [its script or None, its `code` param]}.
RULES_OF_THE_WORKFLOW = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

with SnakemakeApi(OutputSettings()) as api:
    workflow = api.workflow(ResourceSettings(), ConfigSettings(), snakefile=Path(sys.argv[1]),
                            workdir=Path(sys.argv[2]))._workflow
    rules = {r.name: [str(Path(r.basedir.get_path_or_uri(secret_free=True)) / r.script) if r.script else None,
                      r.params.get("code")] for r in workflow.rules}
print(json.dumps(rules))
"""


def test_every_scripted_rule_has_the_code_hash_of_its_own_script(tmp_path):
    """The `code` param is derived from each rule's script (specvit.pipeline.codehash), not written by hand."""
    from specvit.pipeline.codehash import CodeHasher

    r = subprocess.run([sys.executable, "-c", RULES_OF_THE_WORKFLOW, str(REPO / "Snakefile"), str(tmp_path)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    rules = json.loads(r.stdout.strip().splitlines()[-1])
    hasher = CodeHasher(REPO / "src" / "specvit")
    scripted = {name: (Path(script).resolve(), code) for name, (script, code) in rules.items() if script}
    assert len(scripted) == len(rules) - 1 and rules["all"] == [None, None]
    for name, (script, code) in scripted.items():
        assert code == hasher.code_hash(script), name
    # every workflow script is some rule's, and rules that run one script share its hash
    assert {s for s, _ in scripted.values()} == set((REPO / "workflow" / "scripts").resolve().glob("*.py"))
    assert scripted["finetune_run"] == scripted["pretrain_run"]


@pytest.mark.parametrize("cfg", ["config.yaml", "paper.yaml", "smoke.yaml"])
def test_dry_run(tmp_path, cfg):
    r = run_snakemake(tmp_path, "-n", "--configfile", REPO / "config" / cfg)
    assert r.returncode == 0, r.stdout
    resolved = load_config(REPO / "config" / cfg)
    groups = resolved["runs"]
    n_runs = sum(len(g["n_train"]) * len(g.get("seeds", [0])) for g in groups)
    has_vit = any(g["model"] == "vit" for g in groups)
    # the ablations' runs join the run groups' (tests/workflow/test_ablations_workflow.py)
    ablations = ablation_runs(cfg)
    n_runs += sum(len(specs) for specs in ablations.values())
    n_noise = len(ablations.get("robustness", {}))
    # the fair comparison's: the main groups' largest N at eval.main_seeds, and the augmentation study's
    plan = prepare(load_config(REPO / "config" / cfg))
    n_runs += len(set(plan.seed_table_runs()) - set(plan.group_runs))
    n_runs += len({r for arm in plan.augmentation for r in arm.runs} - set(plan.group_runs))
    fair = {"table3_seeds": 1, "fig1_seeds": 1, "model_differences": 1, "ceiling_scored": 1,
            "augmentation_table": 1, "fig_augmentation": 1}
    assert job_counts(r.stdout) == {"simulate_split": 3, "validate_split": 3, "subsets": 1,
                                    "calibration": 1, "spectra_examples": 1, "train_run": n_runs,
                                    "evaluate_run": n_runs, "ceiling": 1, "table3": 1, "fig1": 1, "scaling": 1,
                                    "fig3": 1, "ceiling_sim": int(resolved["ceiling"]["mmse_sim"]["enabled"]),
                                    "pred_vs_true": 1, **({"learning_curves": 1} if has_vit else {}),
                                    "registry": 1, "paper_checklist": 1, "all": 1,
                                    **study_job_counts(REPO / "config" / cfg),
                                    "ablation_table": len(ablations), "ablation_figure": len(ablations),
                                    "ablation_init_gradients": int("tokenization" in ablations),
                                    **({"evaluate_noise": n_noise} if n_noise else {}), **fair}
    for n in resolved["data"]["subsets"]:
        assert f"results/data/subsets/N{n}.npy" in r.stdout


def test_dry_run_of_the_paper_dag_does_not_import_torch(tmp_path):
    """Reading the config, checking every run group's settings and sizing the cluster jobs stay
    torch-free: importing torch alone costs ~1 s of the 3-s budget of a dry run."""
    cmd = [sys.executable, "-X", "importtime", "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(tmp_path), "-n", "--configfile", str(REPO / "config" / "paper.yaml")]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
    # the check saw the workflow's own imports: the config checks, run expansion and job sizing
    assert {"specvit.pipeline.config", "specvit.pipeline.runs", "specvit.pipeline.job_resources"} <= imported
    assert not imported & {"torch", "lightgbm", "sklearn", "matplotlib"}


def test_dry_run_without_configfile_uses_default_config(tmp_path):
    """`configfile:` is found relative to the Snakefile, not the working directory."""
    r = run_snakemake(tmp_path, "-n")
    assert r.returncode == 0, r.stdout
    assert "results/data/subsets/N50000.npy" in r.stdout


def user_files(tmp_path):
    from specvit.data.writer import write_split

    files = {}
    for i, split in enumerate(SPLITS):
        rng = np.random.default_rng(i)
        n, p = (120, 40, 40)[i], 16
        files[split] = tmp_path / "user" / f"my_{split}.h5"
        files[split].parent.mkdir(exist_ok=True)
        write_split(files[split], np.linspace(4000.0, 5000.0, p),
                    rng.uniform(0.5, 1.0, (n, p)).astype(np.float32),
                    np.full((n, p), 0.05, np.float32),
                    {"logg": rng.uniform(1, 5, n).astype(np.float32)}, {"source": "hdf5"})
    return files


def test_user_hdf5_files_are_read_in_place(tmp_path):
    """source: hdf5 -> no simulation; validation and subsets read the user's files, never copy them."""
    files = user_files(tmp_path)
    cfg = tmp_path / "mine.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"source": "hdf5", **{k: str(v) for k, v in files.items()},
                                            "subsets": [50, 120]}, "ablations": None,
                                   "pretrain": {"enabled": False},  # it needs the five labels
                                   "runs": [{"name": "ridge", "model": "ridge", "n_train": [120]}]}))
    work = tmp_path / "work"
    work.mkdir()
    targets = ([f"results/data/{s}.summary.json" for s in SPLITS] + ["results/data/subsets/N120.npy"]
               + ["results/runs/ridge-N120-s0/metrics.json"])
    dry = run_snakemake(work, "-n", "--configfile", cfg)
    assert dry.returncode == 0, dry.stdout
    assert "simulate_split" not in job_counts(dry.stdout)
    # targets first: --configfile takes several values
    r = run_snakemake(work, *targets, "--cores", "2", "--configfile", cfg)
    assert r.returncode == 0, r.stdout
    assert not list((work / "results" / "data").glob("*.h5"))
    for split in SPLITS:
        summary = json.loads((work / f"results/data/{split}.summary.json").read_text())
        assert summary["n"] == {"train": 120, "val": 40, "test": 40}[split]
        assert summary["label_names"] == ["logg"]
    small, large = (np.load(work / f"results/data/subsets/N{n}.npy") for n in (50, 120))
    assert set(small) <= set(large) and len(large) == 120
    # a model trains on the user's 16-pixel spectra: nothing assumes the built-in grid
    metrics = json.loads((work / "results/runs/ridge-N120-s0/metrics.json").read_text())
    assert metrics["n_train"] == 120 and np.isfinite(metrics["val"]["logg"]["r2"])


def copy_of_the_workflow(root):
    """Snakefile, workflow, config, envs and package sources copied to ``root``, so a test can edit them."""
    import shutil

    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    (root / "src").mkdir(parents=True)
    shutil.copy(REPO / "Snakefile", root / "Snakefile")
    for part in ("workflow", "config", "envs", "src/specvit"):
        shutil.copytree(REPO / part, root / part, ignore=ignore)
    return root / "Snakefile"


def test_smoke_run(tmp_path, core_build):
    """The whole DAG on the smoke config (its core from a copy of the shared core build, built by this
    repository's Snakefile; the extra seeds and the augmentation study here, by a copy of the workflow);
    afterwards nothing is stale; editing a package module makes exactly the outputs that run its code stale."""
    targets = DATA_TARGETS + CALIBRATION_TARGETS + RUN_TARGETS + CORE_TARGETS + FAIR_TARGETS
    all_runs = SMOKE_RUNS + SEED_RUNS + AUG_RUNS
    snakefile = copy_of_the_workflow(tmp_path / "repo")
    tmp_path = copy_build(core_build, tmp_path / "work")
    r = run_snakemake(tmp_path, *targets, "--cores", "2", "--configfile", SMOKE, timeout=1800, snakefile=snakefile)
    assert r.returncode == 0, r.stdout
    for t in targets:
        assert (tmp_path / t).stat().st_size > 0, t

    for split in SPLITS:
        summary = json.loads((tmp_path / f"results/data/{split}.summary.json").read_text())
        assert summary["n"] == SMOKE_N[split]
        assert "logg" in summary["label_names"]

    idx = [set(np.load(tmp_path / f"results/data/subsets/N{n}.npy").tolist()) for n in SUBSETS]
    assert [len(s) for s in idx] == list(SUBSETS)
    assert idx[0] <= idx[1] <= idx[2]

    assert len(pd.read_csv(tmp_path / "results/calibration/snr_vs_mag.csv")) > 0
    assert len(pd.read_csv(tmp_path / "results/calibration/ceiling_vs_paper.csv")) > 0

    for run in SMOKE_RUNS:
        metrics = json.loads((tmp_path / f"results/runs/{run}/metrics.json").read_text())
        assert metrics["run_id"] == run and np.isfinite(metrics["val"]["logg"]["r2"])
        assert (tmp_path / f"results/runs/{run}/model/model.json").exists()
    assert (tmp_path / "results/runs/vit-tiny-N600-s0/history.csv").exists()
    # the baselines learn something on 600 spectra
    assert json.loads((tmp_path / "results/runs/ridge-N600-s0/metrics.json").read_text())["val"]["logg"]["r2"] > 0.2

    for rule_log in ("data/simulate_train", "data/validate_test", "data/subsets", "calibration/calibration",
                     "figures/spectra_examples", "runs/lightgbm-N200-s0"):
        assert (tmp_path / f"results/logs/{rule_log}.log").exists(), rule_log

    check_core_results(tmp_path)
    check_fair_comparison(tmp_path)

    again = run_snakemake(tmp_path, *targets, "-n", "--configfile", SMOKE, snakefile=snakefile)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout, again.stdout

    # Snakemake itself sees only the scripts; the `code` params make package edits count,
    # but not edits of comments, docstrings or layout
    package = snakefile.parent / "src" / "specvit"
    forward = package / "physics" / "spectrum.py"
    forward_source = forward.read_text()
    module_doc = ast.get_docstring(ast.parse(forward_source), clean=False)
    assert module_doc and forward_source.count(module_doc) == 1
    forward.write_text(forward_source.replace(module_doc, module_doc + " (reworded)")
                       .replace("\ndef ", "\n# a comment\n\n\ndef ", 1) + "\n# an edit\n")
    again = run_snakemake(tmp_path, *targets, "-n", "--configfile", SMOKE, snakefile=snakefile)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout, again.stdout
    plots = package / "reporting" / "figures.py"
    original = plots.read_text()
    plots.write_text(original + "\n_AN_EDIT = 1\n")
    stale = run_snakemake(tmp_path, *targets, "-n", "--configfile", SMOKE, snakefile=snakefile)
    assert job_counts(stale.stdout) == {"fig1": 1, "fig3": 1, "learning_curves": 1, "pred_vs_true": 1,
                                        "spectra_examples": 1, "fig1_seeds": 1, "fig_augmentation": 1}, stale.stdout
    plots.write_text(original)
    forward.write_text(forward_source + "\n_AN_EDIT = 1\n")
    stale = run_snakemake(tmp_path, *targets, "-n", "--configfile", SMOKE, snakefile=snakefile)
    counts = job_counts(stale.stdout)
    assert counts["simulate_split"] == 3 and counts["calibration"] == 1 and counts["ceiling"] == 1, stale.stdout
    assert counts["ceiling_sim"] == 1, stale.stdout
    assert counts["train_run"] == len(all_runs) and counts["table3"] == 1 and counts["fig1"] == 1
    assert counts["ceiling_scored"] == 1
    forward.write_text(forward_source)

    # a changed parameter makes exactly the outputs that use it stale
    stale = run_snakemake(tmp_path, *targets, "-n", "--configfile", SMOKE, "--config", "seed=43",
                          snakefile=snakefile)
    assert stale.returncode == 0, stale.stdout
    n = len(all_runs)
    assert job_counts(stale.stdout) == {"simulate_split": 3, "validate_split": 3, "subsets": 1, "calibration": 1,
                                        "train_run": n, "evaluate_run": n, "ceiling": 1, "table3": 1, "fig1": 1,
                                        "scaling": 1, "fig3": 1, "pred_vs_true": 1, "learning_curves": 1,
                                        "ceiling_sim": 1, "table3_seeds": 1, "fig1_seeds": 1, "model_differences": 1,
                                        "ceiling_scored": 1, "augmentation_table": 1, "fig_augmentation": 1}
    assert "Params have changed" in stale.stdout
    summary = run_snakemake(tmp_path, "--summary", "--configfile", SMOKE, "--config", "seed=43", snakefile=snakefile)
    status = {row.split("\t")[0]: row.split("\t")[4] for row in summary.stdout.splitlines() if "\t" in row}
    assert status["results/data/train.h5"] == "params changed"
    assert status["results/calibration/snr_vs_mag.csv"] == "params changed"
    assert status["results/figures/spectra_examples.pdf"] == "ok"


def check_simulated_ceiling(root, ceiling):
    """mmse_sim: its rows in ceiling.csv are those of ceiling_sim.csv, clean and for the nuisance set, and R²
    and its Monte Carlo error follow from the per-star posterior means (smoke: 8 stars at the 4 default
    magnitudes); the nuisance set's posterior is at least as wide as the clean one, star by star on average."""
    sim = ceiling[ceiling["kind"] == "mmse_sim"].reset_index(drop=True)
    assert ceiling[ceiling["kind"] != "mmse_sim"][["r2_mc_error", "ess_median"]].isna().all().all()
    assert list(sim["dims"].unique()) == ["5d", "5d+cont2+rv"]
    full = pd.read_csv(root / "results/tables/ceiling_sim.csv")
    pd.testing.assert_frame_equal(sim, full[sim.columns])
    assert (full["n_stars"] == 8).all() and (full["ess_min"] > 1).all()
    per_star = pd.read_csv(root / "results/ceiling_sim/per_star.csv")
    var = 4.0**2 / 12  # the uniform log g prior on [1, 5]
    for row in full.itertuples():
        g = per_star[(per_star["mag"] == row.mag) & (per_star["dims"] == row.dims)]
        assert list(g["star"]) == list(range(8))
        err2 = (g["logg"] - g["post_mean"]) ** 2
        assert row.r2 == pytest.approx(1 - (err2 - g["mc_sd"] ** 2).mean() / var, abs=1e-9)
        assert row.r2_mc_error == pytest.approx(np.sqrt((4 * err2 * g["mc_sd"] ** 2).sum()) / (8 * var), abs=1e-9)
        assert row.ess_median == pytest.approx(g["ess"].median()) and row.r2_q10 <= row.r2_q90
        assert row.r2_bayes_same_stars == pytest.approx(1 - g["bayes"].mean() / var, abs=1e-9)
        assert (g["post_sd"] > 0).all() and g["post_mean"].between(1.0, 5.0).all()
    sd = per_star.groupby("dims")["post_sd"].mean()
    assert sd["5d+cont2+rv"] > sd["5d"]


def check_core_results(root):
    """The tables hold what the runs measured (one source of numbers) and the figures exist."""
    from sklearn.metrics import r2_score

    from specvit.evaluation.predictions import read_predictions

    table3 = pd.read_csv(root / "results/tables/table3_main.csv")
    assert list(table3.columns) == ["model", "run_id", "n_train", "view", "mag", "snr_median", "n", "r2", "r2_lo",
                                    "r2_hi", "mae", "mae_lo", "mae_hi", "rmse", "bias", "n_seeds", "r2_seed_mean",
                                    "r2_seed_std", "mae_seed_mean", "mae_seed_std", "in_train_mags"]
    assert set(table3["run_id"]) == {"vit-tiny-N600-s0", "lightgbm-N600-s0", "ridge-N600-s0", "template-N200-s0"}
    assert (table3[table3["run_id"] == "template-N200-s0"]["n"] == 6).all() and (table3["n_seeds"] == 1).all()
    sweep = table3[table3["view"] == "sweep"]
    assert (sweep["in_train_mags"] == sweep["mag"].between(20.5, 22.5)).all()
    # Table 3's R² per magnitude is the one definition, 1 - MSE / Var of the log g prior (uniform 1-5:
    # 16/12), recomputed from the stored predictions; the ceilings use the same denominator
    for run in ("lightgbm-N600-s0", "ridge-N600-s0", "template-N200-s0"):
        preds = read_predictions(root / f"results/runs/{run}/predictions_sweep.h5")
        assert preds.attrs["r2_variance_logg"] == pytest.approx(16 / 12, rel=1e-6)
        for mag, g in preds.groupby("mag"):
            row = table3[(table3["run_id"] == run) & (table3["view"] == "sweep") & np.isclose(table3["mag"], mag)]
            mse = np.mean((g["pred_logg"].to_numpy(float) - g["true_logg"].to_numpy(float)) ** 2)
            assert row["r2"].item() == pytest.approx(1 - mse / (16 / 12), abs=1e-12)
            assert row["r2"].item() != pytest.approx(r2_score(g["true_logg"], g["pred_logg"]), abs=1e-6)
    ceiling = pd.read_csv(root / "results/tables/ceiling.csv")
    assert list(ceiling.columns) == ["mag", "snr_median", "kind", "dims", "r2", "r2_q10", "r2_q90",
                                     "r2_mc_error", "ess_median"]
    assert set(ceiling["kind"]) == {"median", "mse", "bayes", "mmse_sim"}
    assert set(ceiling["dims"]) == {"5d", "1d", "5d+cont2+rv"}  # the clean rows and the default nuisance set
    for dims in ("5d", "1d", "5d+cont2+rv"):
        rows = ceiling[(ceiling["dims"] == dims) & (ceiling["kind"] != "mmse_sim")]
        assert set(rows["kind"]) == {"median", "mse", "bayes"} and rows["r2"].notna().all()
    check_simulated_ceiling(root, ceiling)
    scaling = pd.read_csv(root / "results/tables/scaling.csv")
    assert list(scaling.columns) == ["model", "n_train", "seed", "r2", "r2_lo", "r2_hi", "mae"]
    assert len(scaling) == len(SMOKE_RUNS)
    pooled = table3[(table3["view"] == "pooled") & (table3["run_id"] == "ridge-N600-s0")]["r2"].item()
    assert scaling[(scaling["model"] == "ridge") & (scaling["n_train"] == 600)]["r2"].item() == pooled
    for stem in ("fig1_r2_vs_snr", "fig3_scaling", "pred_vs_true", "learning_curves"):
        assert (root / f"results/figures/{stem}.pdf").read_bytes().startswith(b"%PDF")


def check_fair_comparison(root):
    """Table 3 over seeds, the paired differences and the augmentation study hold what the runs measured."""
    from specvit.evaluation.paired import paired_difference
    from specvit.evaluation.predictions import read_predictions

    seeds = pd.read_csv(root / "results/tables/table3_seeds.csv")
    vit = seeds[(seeds["model"] == "vit-tiny") & (seeds["view"] == "pooled")].iloc[0]
    pooled = [pd.read_csv(root / f"results/runs/vit-tiny-N600-s{s}/metrics_test.csv").query("view == 'pooled'")["r2"]
              .item() for s in (0, 1)]
    assert vit["n_seeds"] == 2 and vit["r2"] == pooled[0] and vit["r2_seed_mean"] == pytest.approx(np.mean(pooled))
    assert vit["r2_seed_std"] == pytest.approx(np.std(pooled, ddof=1))
    assert (seeds[seeds["model"] == "template"]["n_seeds"] == 1).all()

    diffs = pd.read_csv(root / "results/tables/model_differences.csv")
    assert len(diffs) == 6 * 10  # 6 pairs of the 4 main models x (pooled + 9 magnitudes)
    row = diffs[(diffs["model_a"] == "vit-tiny") & (diffs["model_b"] == "lightgbm") & (diffs["mag"] == 22.0)].iloc[0]
    pa, pb = ([read_predictions(root / f"results/runs/{g}-N600-s{s}/predictions_sweep.h5").query("mag == 22.0")
               for s in (0, 1)] for g in ("vit-tiny", "lightgbm"))
    expect = paired_difference(pa[0]["true_logg"], np.stack([p["pred_logg"] for p in pa]),
                               np.stack([p["pred_logg"] for p in pb]), variance=16 / 12, n_boot=200, seed=42 + 6)
    assert row[list(expect)].to_dict() == pytest.approx(expect)
    assert (diffs[diffs["model_b"] == "template"]["n"] == 6).all()  # on the template's scored stars

    aug = pd.read_csv(root / "results/tables/augmentation.csv")
    assert aug["noise_draws"].tolist() == [2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0]  # fresh: 2 epochs; 2 copies
    for r in aug.itertuples():
        run = {"fresh noise every epoch": "vit-tiny", "one fixed noise draw": "aug-vit-tiny-fixed",
               "1 noisy copy": "lightgbm", "2 noisy copies": "aug-lightgbm-k2"}[r.arm] + f"-N{r.n_train}-s0"
        test = pd.read_csv(root / f"results/runs/{run}/metrics_test.csv").query("view == 'pooled'")
        assert r.r2 == test["r2"].item()
    assert json.loads((root / "results/runs/aug-lightgbm-k2-N200-s0/metrics.json").read_text())["noise_copies"] == 2
    slopes = pd.read_csv(root / "results/tables/augmentation_slopes.csv").set_index("group")
    lgb = aug[aug["group"] == "lightgbm"].set_index(["augmented", "n_train"])["r2"]
    assert slopes.loc["lightgbm", "slope_augmented"] == pytest.approx((lgb[True, 600] - lgb[True, 200]) / np.log10(3))
    scored = pd.read_csv(root / "results/tables/ceiling_scored_stars.csv")
    assert set(scored["n_stars"]) == {6} and set(scored["kind"]) == {"median", "mse", "bayes"}

