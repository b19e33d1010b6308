"""Tracking end to end on a tiny config: run registry and params diff, provenance sidecars and PDF
metadata, the Snakemake report, the generated paper checklist and check_paper, staleness after
a config change, and the optional MLflow export. The module works in one copy of the shared build
of the core smoke DAG (tests/conftest.py)."""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake.utils import update_config

from conftest import CORE, REPO, SMOKE, copy_build, run_snakemake, skip_unless_required
from specvit.pipeline.config import load_config
from specvit.pipeline.outputs import SECTIONS

pytestmark = pytest.mark.workflow

# The config of the shared build: smoke.yaml with the core-only overlay (no ablations, no studies)
TRACK = yaml.safe_load(CORE.read_text())
SMOKE_RUNS = yaml.safe_load(SMOKE.read_text())["runs"]
RUNS = ["vit-tiny-N200-s0", "vit-tiny-N600-s0", "lightgbm-N200-s0", "lightgbm-N600-s0", "ridge-N200-s0",
        "ridge-N600-s0", "template-N200-s0"]
MAIN_RUNS = ["vit-tiny-N600-s0", "lightgbm-N600-s0", "ridge-N600-s0", "template-N200-s0"]  # Table 3's
TABLES = ["results/tables/table3_main.csv", "results/tables/ceiling.csv", "results/tables/scaling.csv",
          "results/tables/scaling_summary.csv", "results/calibration/snr_vs_mag.csv",
          "results/calibration/ceiling_vs_paper.csv", "results/runs.csv", "results/tables/paper_numbers.csv"]
FIGURES = [f"results/figures/{s}.pdf" for s in ("fig1_r2_vs_snr", "fig3_scaling", "learning_curves", "pred_vs_true",
                                                "spectra_examples")]


def write_config(path, extra=None):
    cfg = json.loads(json.dumps(TRACK))
    update_config(cfg, extra or {})
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))  # key order kept: Snakemake compares params by it
    return path


def lightgbm_changed(path):
    """The module's config with another LightGBM num_leaves (15 in the smoke config)."""
    runs = [{**r, "params": {**r["params"], "num_leaves": 5}} if r["model"] == "lightgbm" else r for r in SMOKE_RUNS]
    return write_config(path, {"runs": runs})


def snakemake(work, *args, config=None, **kw):
    """Snakemake on this repository's Snakefile with smoke.yaml and the module's config merged over it."""
    return run_snakemake(work, *args, "--configfile", SMOKE, config or work / "track.yaml", **kw)


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def job_counts(output):
    import re

    table = output.split("Job stats:", 1)[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m[1] != "total"}


@pytest.fixture(scope="module")
def work(tmp_path_factory, core_build):
    work = copy_build(core_build, tmp_path_factory.mktemp("tracking") / "work")
    write_config(work / "track.yaml")
    return work


def resolved_config(*files):
    """The config Snakemake sees: the defaults, config.yaml and the config files laid over each other."""
    return load_config(*files)


# ---------------------------------------------------------------- staleness (issue point 3)


def test_nothing_is_stale_after_the_full_build(work):
    r = snakemake(work, "-n")
    assert r.returncode == 0 and "Nothing to be done" in r.stdout, r.stdout[-3000:]


def test_one_models_parameter_makes_only_its_runs_and_what_uses_them_stale(work):
    r = snakemake(work, "-n", config=lightgbm_changed(work / "lgb_changed.yaml"))
    assert r.returncode == 0, r.stdout
    assert job_counts(r.stdout) == {"train_run": 2, "evaluate_run": 2, "table3": 1, "fig1": 1, "pred_vs_true": 1,
                                    "scaling": 1, "fig3": 1, "registry": 1, "paper_checklist": 1, "all": 1,
                                    "table3_seeds": 1, "fig1_seeds": 1, "model_differences": 1}
    retrained = {line.split("results/runs/")[1].split("/")[0] for line in r.stdout.splitlines()
                 if "output: results/runs/" in line}
    assert retrained == {"lightgbm-N200-s0", "lightgbm-N600-s0"}


# ---------------------------------------------------------------- registry


def test_registry_has_one_row_per_run_with_its_files_numbers(work):
    reg = pd.read_csv(work / "results/runs.csv")
    assert list(reg["run_id"]) == sorted(RUNS)  # by model, group, N, seed
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    for row in reg.to_dict("records"):
        run = work / "results/runs" / row["run_id"]
        metrics = json.loads((run / "metrics.json").read_text())
        pooled = pd.read_csv(run / "metrics_test.csv").query("view == 'pooled'").iloc[0]
        assert row["val_r2"] == pytest.approx(metrics["val"]["logg"]["r2"], rel=1e-12)
        assert row["test_r2"] == pytest.approx(pooled["r2"], rel=1e-12)
        assert row["test_mae"] == pytest.approx(pooled["mae"], rel=1e-12)
        assert row["wall_seconds"] == pytest.approx(metrics["wall_seconds"])
        assert row["status"] == "evaluated" and row["device"] == "cpu" and row["in_config"]
        assert row["git_commit"] == metrics["git"]["commit"] == head
    vit = reg[reg["model"] == "vit"].iloc[0]
    vit_metrics = json.loads((work / "results/runs/vit-tiny-N200-s0/metrics.json").read_text())
    assert vit["best_epoch"] == vit_metrics["fit"]["best_epoch"]
    assert vit["vit.patch"] == 64 and vit["train.epochs"] == 2
    assert set(reg[reg["model"] == "lightgbm"]["params.num_leaves"]) == {15}


def test_registry_lists_folders_of_other_configs_and_names_missing_runs(work, tmp_path):
    import shutil

    from specvit.reporting.registry import build_registry

    runs = tmp_path / "runs"
    shutil.copytree(work / "results/runs", runs)
    old = runs / "ridge-old-N200-s0"  # a run of an earlier config with a group since renamed
    shutil.copytree(runs / "ridge-N200-s0", old)
    spec = json.loads((old / "run.json").read_text())
    (old / "run.json").write_text(json.dumps({**spec, "run_id": old.name, "group": "ridge-old"}))
    reg = build_registry(runs, RUNS)
    assert len(reg) == len(RUNS) + 1
    assert list(reg[~reg["in_config"]]["run_id"]) == ["ridge-old-N200-s0"]
    (runs / "vit-tiny-N200-s0" / "metrics_test.csv").unlink()
    assert build_registry(runs, RUNS).set_index("run_id").loc["vit-tiny-N200-s0", "status"] == "trained"
    missing = r"no run folder \(run.json\) for the config's runs \['vit-tiny-N999-s0'\]"
    with pytest.raises(FileNotFoundError, match=missing):
        build_registry(runs, RUNS + ["vit-tiny-N999-s0"])


def test_runs_compare_shows_what_differs_per_experiment(work):
    text = (work / "results/tables/runs_compare.md").read_text()
    sections = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    assert sections == ["lightgbm (2 runs)", "ridge (2 runs)", "template (1 run)", "vit (2 runs)"]
    lgb = text.split("## lightgbm")[1].split("## ridge")[0]
    header = next(line for line in lgb.splitlines() if line.startswith("| run_id"))
    # N differs between the two LightGBM runs; their settings are shared and listed once
    assert [c.strip() for c in header.strip("|").split("|")][:2] == ["run_id", "n_train"]
    assert "params.num_leaves" not in header and "`params.num_leaves` = 15" in lgb


# ---------------------------------------------------------------- provenance


def test_every_table_and_figure_has_a_sidecar_that_matches_the_files(work):
    from specvit.reporting.provenance import config_hash, sidecar_path

    expected_hash = config_hash(resolved_config(SMOKE, work / "track.yaml"))
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    for target in TABLES + FIGURES:
        prov = json.loads((work / sidecar_path(target)).read_text())
        for name, h in prov["outputs"].items():
            assert h["sha256"] == sha256((work / target).with_name(name)), (target, name)
        for path, h in prov["inputs"].items():
            assert h["sha256"] == sha256(work / path), (target, path)
        assert prov["config_hash"] == expected_hash, target
        assert prov["git"]["commit"] == head and isinstance(prov["git"]["dirty"], bool)
        assert prov["seeds"]["config.seed"] == 42
        assert prov["packages"]["torch"] and prov["device"]["accelerator"] == "cpu"
    # every file in the table and figure folders is listed in a sidecar (catches a script without `track`)
    made = [p for d in ("tables", "figures", "calibration") for p in (work / "results" / d).iterdir()
            if not p.name.endswith(".prov.json")]
    for path in made:
        prov = work / sidecar_path(path.relative_to(work))
        assert prov.is_file() and path.name in json.loads(prov.read_text())["outputs"], path
    table3 = json.loads((work / "results/tables/table3_main.prov.json").read_text())
    assert set(table3["outputs"]) == {"table3_main.csv", "table3_main.md", "table3_main.tex"}
    assert table3["rule"] == "table3" and table3["params"]["runs"] == MAIN_RUNS
    assert table3["runs"] == {rid: {"seed": 0, "device": "cpu", "git_commit": head} for rid in MAIN_RUNS}
    calibration = json.loads((work / "results/calibration/snr_vs_mag.prov.json").read_text())
    assert calibration["seeds"]["params.seed"] == 42 + 4  # the calibration stream
    for pdf in FIGURES:
        data = (work / pdf).read_bytes()
        assert f"config_hash={expected_hash}".encode() in data and f"commit={head}".encode() in data, pdf


def test_tables_are_byte_identical_when_rebuilt(work):
    tables = TABLES[:4]
    before = {t: sha256(work / t) for t in tables}
    r = snakemake(work, *tables, "--cores", "2", "--forcerun", "table3", "scaling", "ceiling")
    assert r.stdout.count("Finished jobid") == 3, r.stdout[-3000:]
    assert r.returncode == 0, r.stdout[-3000:]
    assert {t: sha256(work / t) for t in tables} == before
    r = snakemake(work, "--cores", "2")  # the figures and the checklist follow the rebuilt tables
    assert r.returncode == 0, r.stdout[-3000:]


def test_writers_without_tracking_write_no_sidecar(tmp_path):
    from specvit.reporting import provenance
    from specvit.reporting.tables import write_table

    provenance.untrack()
    write_table(pd.DataFrame({"a": [1.0]}), tmp_path / "t.csv", tmp_path / "t.md")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.md"]


def test_large_files_are_hashed_by_their_ends(tmp_path, monkeypatch):
    from specvit.runtime import hashing

    monkeypatch.setattr(hashing, "BLOCK", 4)
    f = tmp_path / "big.bin"
    f.write_bytes(b"abcdXXXXXXXXwxyz")
    h = hashing.file_hash(f, partial_above=10)  # provenance: partial_above=FULL_HASH_LIMIT
    assert h == {"sha256": hashlib.sha256(b"abcdwxyz").hexdigest(), "bytes": 16, "partial": True}
    f.write_bytes(b"abcdYYYYYYYYwxyz")  # the middle is not read: the sidecar says so with `partial`
    assert hashing.file_hash(f, partial_above=10)["sha256"] == h["sha256"]


# ---------------------------------------------------------------- report


@pytest.fixture(scope="module")
def report(work):
    """results/report.html of the module's build (`snakemake --report` with the build's config)."""
    r = snakemake(work, "--report", "results/report.html")
    assert r.returncode == 0, r.stdout[-3000:]
    return work / "results/report.html"


def embedded(html, name):
    """A value the report page embeds as `<script id=...> var <name> = <JSON>;`: the data its scripts
    draw the page from (found by its own script tag: the libraries inlined before it use the same names)."""
    import re

    start = re.search(rf'<script id="[\w-]+">\s*var {name} = ', html).end()
    return json.JSONDecoder().raw_decode(html, start)[0]


def test_report_builds_with_sections_and_rendered_captions(report):
    html = report.read_text()
    # the report embeds its index as JSON: {category: {subcategory: [files]}}
    sections = {"main": ["table3_main.csv", "fig1_r2_vs_snr.pdf", "pred_vs_true.png"],
                "scaling": ["scaling.csv", "fig3_scaling.pdf"],
                "ceiling": ["ceiling.csv"],
                "data": ["snr_vs_mag.csv", "spectra_examples.pdf"],
                "tracking": ["runs.csv", "paper_checklist.md", "runs_compare.md"]}
    categories = embedded(html, "categories")
    assert set(categories) <= set(SECTIONS.values())  # every section is declared once, in pipeline.outputs
    # Snakemake lists sections by name: their numbers keep the paper's order
    assert sorted(categories) == [name for name in SECTIONS.values() if name in categories]
    for key, files in sections.items():
        category = SECTIONS[key]
        listed = {Path(f).name for subcategory in categories[category].values() for f in subcategory}
        assert set(files) <= listed, (category, files, listed)
    # captions rendered with the config that built the files, as paper captions: no template left,
    # no docutils error, the label first, the run groups named
    captions = {path: result["caption"] for path, result in embedded(html, "results").items()}
    assert "snakemake.config" not in html
    assert not [path for path, caption in captions.items() if "system-message" in caption or not caption]
    table3 = captions["results/tables/table3_main.csv"]
    assert table3.startswith("<p><strong>Table 3.</strong> Test metrics of log g"), table3[:200]
    assert ", ".join(MAIN_RUNS) in table3
    assert captions["results/figures/fig1_r2_vs_snr.png"].startswith("<p><strong>Figure 1.</strong> Test R² of log g")
    assert "run groups vit-tiny, lightgbm, ridge, template" in captions["results/figures/fig1_r2_vs_snr.png"]


def test_report_opens_with_the_text_and_figure_1_and_folds_the_config_away(work, report):
    from urllib.parse import unquote_to_bytes

    desc = embedded(report.read_text(), "workflow_desc")  # the HTML of the report's opening page
    assert "system-message" not in desc and "{{" not in desc and "{%" not in desc
    title = desc.index("<h1 class=\"title\">SpecViT")
    opening = desc.index("This report holds the tables and figures of the SpecViT paper")
    figure = desc.index("<img alt=\"Figure 1")
    config = desc.index("<details>")  # folded: no `open` attribute
    assert title < opening < figure < config, (title, opening, figure, config)
    # Figure 1 is the build's own PNG, inside the page (a data URI), with its paper caption
    src = desc[figure:].split('src="', 1)[1].split('"', 1)[0]
    assert src.startswith("data:image/png,")
    png = (work / "results/figures/fig1_r2_vs_snr.png").read_bytes()
    assert unquote_to_bytes(src.removeprefix("data:image/png,")) == png
    assert desc.index("<strong>Figure 1.</strong> Test R² of log g", figure) < config
    # every category of the report is listed, as a link that opens it, before the config
    for category in embedded(report.read_text(), "categories"):
        link = desc.index(f">{category}</a>")
        assert opening < link < config and "javascript:app.showCategory" in desc[link - 200:link], category
    # the folded block is the whole resolved config, the last thing on the page
    folded = desc[config:].split("<pre>", 1)[1].split("</pre>", 1)[0]
    assert json.loads(folded) == resolved_config(SMOKE, work / "track.yaml")
    assert desc.rstrip().endswith("</details></div>")


def test_report_opening_screen_in_a_browser(report, tmp_path):
    """What a reader's browser draws: the report's scripts run in headless Chromium (skipped without one)."""
    import shutil

    if not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")):
        skip_unless_required("no Chromium on PATH (Debian: apt-get install chromium)", "SPECVIT_REQUIRE_CHROMIUM")
    tool = REPO / "tools" / "report_screenshot.py"
    png, dom = tmp_path / "report.png", tmp_path / "dom.html"
    r = subprocess.run([sys.executable, str(tool), str(report), str(png), "--dom", str(dom)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    from PIL import Image

    with Image.open(png) as image:
        assert image.size == (1280, 1600) and len(image.getcolors(1 << 20) or ()) > 50  # drawn, not blank
    page = dom.read_text()
    prose = page.index('class="prose prose-sm max-w-lg"')  # the opening page, beside the rule graph
    positions = [page.index(s, prose) for s in ("SpecViT: stellar surface gravity", '<img alt="Figure 1',
                                                 "How to read this report", "<details>")]
    assert positions == sorted(positions), positions
    assert 'id="rulegraph"' in page


# ---------------------------------------------------------------- checklist and check_paper


def test_checklist_reports_status_and_our_numbers_beside_the_papers(work):
    text = (work / "results/paper_checklist.md").read_text()
    assert [line for line in text.splitlines() if line.startswith("## ")] == [
        "## P0", "## P1", "## P2", "## Paper-readiness checklist (minimum set)"]
    assert "### P0.1 " in text and text.split("### P0.1 ")[1].split("\n")[0].endswith("**built**")
    assert text.split("### P0.5 ")[1].split("\n")[0].endswith("**not in this config**")
    assert text.split("### P2.1 ")[1].split("\n")[0].endswith("**not in this config**")  # the studies are off
    numbers = pd.read_csv(work / "results/tables/paper_numbers.csv").set_index("key")
    table3 = pd.read_csv(work / "results/tables/table3_main.csv")
    vit = table3[(table3["model"] == "vit-tiny") & (table3["view"] == "pooled")].iloc[0]
    assert numbers.loc["vit.pooled.r2", "ours"] == pytest.approx(vit["r2"], rel=1e-12)
    assert numbers.loc["vit.pooled.r2", "paper"] == 0.711  # paper/experiments.md, P0.1
    vit22 = table3[(table3["model"] == "vit-tiny") & (table3["view"] == "sweep") & (table3["mag"] == 22.0)].iloc[0]
    ceilings = pd.read_csv(work / "results/tables/ceiling.csv")
    ceiling = ceilings.query("kind == 'median' and dims == '5d' and mag == 22.0")
    assert numbers.loc["vit.gap@22.0", "ours"] == pytest.approx(ceiling["r2"].item() - vit22["r2"], rel=1e-12)
    assert numbers.loc["ceiling.median5d@22.0", "ours"] == pytest.approx(ceiling["r2"].item(), rel=1e-12)
    assert numbers.loc["vit.gap@22.0", "diff"] == pytest.approx(numbers.loc["vit.gap@22.0", "ours"] - 0.02)
    scaling = pd.read_csv(work / "results/tables/scaling_summary.csv").set_index("model")
    assert numbers.loc["lightgbm.slope", "ours"] == pytest.approx(scaling.loc["lightgbm", "slope_r2_per_dex"])
    assert pd.isna(numbers.loc["vit.scaling.r2@1000000", "ours"])  # no run at N = 1M in this config
    assert f"| ViT test R² (pooled) | {vit['r2']:.3f} | 0.711 |" in text


def test_check_paper_prints_the_table_and_fails_only_when_strict(work):
    r = snakemake(work, "check_paper", "--cores", "1")
    assert r.returncode == 0, r.stdout[-3000:]
    rows = {line.split()[1]: line.split()[0] for line in r.stdout.splitlines()
            if line.strip().startswith(("PASS", "FAIL", "MISSING"))}
    assert set(rows) == set(resolved_config(SMOKE, work / "track.yaml")["tracking"]["check_paper"]["tolerances"])
    assert rows["vit.pooled.r2"] == "FAIL"  # two epochs on 600 spectra are far from the paper's 0.711
    n_bad = sum(result != "PASS" for result in rows.values())
    strict = write_config(work / "strict.yaml", {"tracking": {"check_paper": {"strict": True}}})
    r = snakemake(work, "check_paper", "--cores", "1", config=strict)
    assert r.returncode != 0, r.stdout[-3000:]
    assert f"check_paper: {n_bad} numbers outside tolerance or missing" in r.stdout, r.stdout[-3000:]
    # config files merge the tolerances over the defaults; null leaves a number out
    only_ceiling = {key: None for key in rows} | {"ceiling.median5d@20.0": 0.05}
    lenient = write_config(work / "lenient.yaml", {"tracking": {"check_paper": {"strict": True,
                                                                                "tolerances": only_ceiling}}})
    r = snakemake(work, "check_paper", "--cores", "1", config=lenient)
    assert r.returncode == 0, r.stdout[-3000:]
    assert [line.split()[:2] for line in r.stdout.splitlines() if line.strip().startswith(("PASS", "FAIL"))] == [
        ["PASS", "ceiling.median5d@20.0"]]


def test_check_paper_says_when_a_number_is_stale(work):
    r = snakemake(work, "check_paper", "--cores", "1", config=lightgbm_changed(work / "lgb_changed2.yaml"))
    assert r.returncode == 0, r.stdout[-3000:]
    line = next(line for line in r.stdout.splitlines() if "lightgbm.pooled.r2" in line)
    assert line.split()[-1] == "stale"
    assert next(line for line in r.stdout.splitlines() if "ceiling.median5d@20.0" in line).split()[-1] == "built"


def test_unknown_number_key_in_the_tolerances_is_named(work):
    cfg = write_config(work / "bad.yaml", {"tracking": {"check_paper": {"tolerances": {"vit.pooled.r3": 0.1}}}})
    r = snakemake(work, "-n", config=cfg)
    assert r.returncode != 0
    assert "config key 'tracking.check_paper.tolerances' has unknown number keys ['vit.pooled.r3']" in r.stdout


def test_tokenization_numbers_are_those_of_the_papers_setup():
    """The paper ran C1D tokens at stride = patch with the default init: other variants do not count."""
    from specvit.reporting.checklist import TOKENIZATION_TABLE, Results, our_number

    cols = ["tokenizer", "patch", "stride", "init", "token_norm", "r2_mean"]
    table = pd.DataFrame([("C1D", 16, 16, "lecun", "none", 0.5), ("C1D", 16, 16, "legacy", "none", 0.9),
                          ("SW", 16, 16, "lecun", "none", 0.8), ("C1D", 16, 8, "lecun", "none", 0.7),
                          ("C1D", 32, 32, "lecun", "layernorm", 0.95), ("C1D", 32, 32, "lecun", "none", 0.4)],
                         columns=cols)
    registry = pd.DataFrame({"group": ["abl-tokenization-sw-p16", "abl-tokenization-c1d-p16",
                                       "abl-tokenization-c1d-p32", "vit-tiny", "abl-tokenization-c1d-p64"],
                             "vit.tokenizer": ["SW", "C1D", "C1D", "C1D", "C1D"],
                             "in_config": [True, True, True, True, False], "val_r2": [0.99, 0.61, 0.63, 0.9, 0.95]})
    res = Results(None, None, None, None, registry, [], table)
    assert our_number("ablation.tokenization.r2@patch16", res) == (0.5, TOKENIZATION_TABLE)
    assert our_number("ablation.tokenization.r2@patch32", res) == (0.4, TOKENIZATION_TABLE)
    assert np.isnan(our_number("ablation.tokenization.r2@patch64", res)[0])  # not in the table
    assert our_number("ablation.tokenization.best_val_r2", res) == (0.63, "results/runs.csv")
    assert np.isnan(our_number("ablation.tokenization.r2@patch16", Results(None, None, None, None, None, []))[0])


def test_summary_status_reads_snakemakes_columns():
    from specvit.reporting.dag_status import summary_status

    text = ("output_file\tdate\trule\tlog-file(s)\tstatus\tplan\n"
            "a.csv\tMon\tr\tl\tok\tno update\n"
            "b.csv\tMon\tr\tl\tparams changed\tupdate pending\n"
            "c.csv\t-\tr\tl\tmissing\tupdate pending\n")
    assert summary_status(text) == {"a.csv": "built", "b.csv": "stale", "c.csv": "missing"}


# ---------------------------------------------------------------- MLflow (optional)


def test_mlflow_export_mirrors_the_registry(work):
    pytest.importorskip("mlflow")
    pytest.importorskip("alembic")  # the SQLite store
    from mlflow.tracking import MlflowClient

    cfg = write_config(work / "mlflow.yaml", {"tracking": {"mlflow": True}})
    for _ in range(2):  # exporting again replaces the MLflow runs instead of adding copies
        r = snakemake(work, "results/mlflow/logged.json", "--cores", "1", "--forcerun", "mlflow", config=cfg)
        assert r.returncode == 0, r.stdout[-3000:]
    logged = json.loads((work / "results/mlflow/logged.json").read_text())
    client = MlflowClient(tracking_uri=logged["tracking_uri"])
    runs = client.search_runs([logged["experiment_id"]], filter_string="tags.`specvit.kind` = 'run'")
    reg = pd.read_csv(work / "results/runs.csv").set_index("run_id")
    assert sorted(r.data.tags["specvit.run_id"] for r in runs) == sorted(reg.index)
    for run in runs:
        rid = run.data.tags["specvit.run_id"]
        assert run.info.run_id == logged["runs"][rid]
        assert run.data.params["n_train"] == str(reg.loc[rid, "n_train"])
        assert run.data.metrics["test_r2"] == pytest.approx(reg.loc[rid, "test_r2"])
        assert run.data.tags["git_commit"] == reg.loc[rid, "git_commit"]
    vit = logged["runs"]["vit-tiny-N200-s0"]
    history = pd.read_csv(work / "results/runs/vit-tiny-N200-s0/history.csv")
    steps = client.get_metric_history(vit, "epoch_val_r2")
    assert [m.step for m in steps] == list(history["epoch"])
    assert [m.value for m in steps] == pytest.approx(list(history["val_r2"]))
    artifacts = {a.path for d in client.list_artifacts(logged["results_run"]) for a in client.list_artifacts(
        logged["results_run"], d.path)}
    assert "figures/fig1_r2_vs_snr.pdf" in artifacts and "tables/table3_main.csv" in artifacts
