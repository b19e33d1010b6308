"""The workflow on a real Slurm cluster through profiles/slurm, and the cluster sizing of jobs.

The integration tests (marker `slurm`) need the one-node cluster of .ci/slurm_up.sh (`.ci/run`
starts it) and the executor plugin (`pip install -e ".[slurm]"`); without them they are skipped,
unless SPECVIT_REQUIRE_SLURM=1 (set by .ci/run), where a missing cluster is an error.
They submit a small DAG (two runs of the smoke config: the tiny ViT and LightGBM, and Table 3)
through `--profile profiles/slurm --profile .ci/slurm-profile`, check that every job ran as a
Slurm job, that the ViT job was handed a GPU, that the tables equal those of a local run, that a
requeued (preempted) ViT job resumes from its checkpoint, that a failing job makes snakemake
exit non-zero, and that a data-parallel ViT (training.devices: 2) runs as one Slurm job of two
tasks whose ranks (srun, gloo on the CPU) train like the single-process run. The other tests (no
cluster needed) check the GPU-hours that a dry run prints and the sizing functions of specvit.cluster.
"""
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import REPO, SNAKEFILE, run_snakemake, skip_unless_required
from specvit.pipeline import cluster
from specvit.pipeline.config import load_config
from specvit.pipeline.runs import expand_runs
from specvit.runtime.jobenv import describe, job_environment

SMOKE = REPO / "config" / "smoke.yaml"
PROFILE = REPO / "profiles" / "slurm"
CI_PROFILE = REPO / ".ci" / "slurm-profile"
SLURM_DIR = Path(os.environ.get("SPECVIT_SLURM_DIR", "/tmp/specvit-slurm"))
# Two runs and Table 3: 9 Snakemake jobs in 4 Slurm jobs. The data jobs and the evaluation jobs go
# in one Slurm job each (Snakemake job groups), as one would bundle small jobs on a real cluster:
# each Slurm job costs a Snakemake start-up and a status-check delay. The training jobs stay alone.
GROUPS = ["--groups", "simulate_split=data", "subsets=data", "evaluate_run=report", "table3=report",
          "--group-components", "data=3"]
RUNS_OVERLAY = {"runs": [
    # 60 epochs (about 3 s on an idle machine) leave time to requeue the job in mid-training
    {"name": "vit-tiny", "model": "vit", "preset": "tiny", "n_train": [200], "train": {"epochs": 60}},
    {"name": "lightgbm", "model": "lightgbm", "params": {"n_estimators": 40, "num_leaves": 15}, "n_train": [200]},
]}
VIT, LGBM = "vit-tiny-N200-s0", "lightgbm-N200-s0"
TARGET = "results/tables/table3_main.csv"
N_SLURM_JOBS = 4
PLUGIN = importlib.util.find_spec("snakemake_executor_plugin_slurm") is not None


def _slurm_env():
    """The environment with SLURM_CONF of the CI cluster, or None when no cluster answers."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if "SLURM_CONF" not in env and (SLURM_DIR / "pids").is_file():  # started by .ci/slurm_up.sh
        env["SLURM_CONF"] = str(SLURM_DIR / "slurm.conf")
    if shutil.which("sinfo") is None or "SLURM_CONF" not in env:
        return None
    try:
        r = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        return None
    states = r.stdout.split()
    return env if r.returncode == 0 and any(s.rstrip("*") in ("idle", "mixed", "allocated") for s in states) else None


def _unavailable(reason):
    skip_unless_required(reason, "SPECVIT_REQUIRE_SLURM")


def slurm_command(workdir, *args, timeout=300):
    """snakemake with the slurm profile and the CI overlay. A hung workflow is stopped with SIGINT
    (which cancels its Slurm jobs), SIGKILL 30 s later."""
    exe = Path(sys.executable).with_name("snakemake")
    return ["timeout", "-s", "INT", "-k", "30", str(timeout), str(exe) if exe.exists() else "snakemake",
            "--snakefile", str(SNAKEFILE), "--directory", str(workdir),
            "--profile", str(PROFILE), "--profile", str(CI_PROFILE), *map(str, args)]


def snakemake_slurm(workdir, env, *args, timeout=300):
    return subprocess.run(slurm_command(workdir, *args, timeout=timeout), cwd=workdir, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def submitted_job_ids(output):
    """{slurm job id} from the plugin's 'Job N has been submitted with SLURM jobid M' lines."""
    return set(re.findall(r"submitted with SLURM jobid (\d+)", output))


@pytest.fixture(scope="module")
def overlay(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "runs.yaml"
    path.write_text(yaml.safe_dump(RUNS_OVERLAY))
    return path


@pytest.fixture(scope="module")
def slurm_build(tmp_path_factory, overlay):
    """The small DAG built through Slurm, and the same built locally: (slurm dir, output, local dir)."""
    if not PLUGIN:
        _unavailable("snakemake-executor-plugin-slurm is not installed (pip install -e '.[slurm]')")
    env = _slurm_env()
    if env is None:
        _unavailable("no Slurm cluster answers (start one with .ci/slurm_up.sh)")
    workdir = tmp_path_factory.mktemp("slurm")
    r = snakemake_slurm(workdir, env, TARGET, *GROUPS, "--configfile", SMOKE, overlay)
    assert r.returncode == 0, r.stdout[-6000:]
    local = tmp_path_factory.mktemp("local")
    rl = run_snakemake(local, TARGET, "--cores", "2", "--configfile", SMOKE, overlay)
    assert rl.returncode == 0, rl.stdout[-6000:]
    return workdir, r.stdout, local, env


@pytest.mark.slurm
def test_every_job_ran_as_a_slurm_job(slurm_build):
    workdir, out, _, _ = slurm_build
    ids = submitted_job_ids(out)
    assert len(ids) == N_SLURM_JOBS, out[-4000:]
    assert "9 of 9 steps (100%) done" in out
    for rid in (VIT, LGBM):
        job = json.loads((workdir / "results" / "runs" / rid / "metrics.json").read_text())["job"]
        assert job["slurm_job_id"] in ids
        log = (workdir / "results" / "logs" / "runs" / f"{rid}.log").read_text()
        assert f"slurm_job_id={job['slurm_job_id']}" in log
        # the plugin's own log of the job, kept by the profile, under the job's id
        assert list((workdir / ".snakemake" / "slurm_logs").rglob(f"{job['slurm_job_id']}.log"))


@pytest.mark.slurm
def test_the_vit_job_gets_a_gpu_and_lightgbm_none(slurm_build):
    workdir = slurm_build[0]
    vit = json.loads((workdir / "results" / "runs" / VIT / "metrics.json").read_text())
    lgbm = json.loads((workdir / "results" / "runs" / LGBM / "metrics.json").read_text())
    assert vit["job"]["cuda_visible_devices"] not in (None, "")   # Slurm's --gpus=1 sets the mask
    assert lgbm["job"]["cuda_visible_devices"] is None
    # The CI node's GPUs are device files without a driver: the CPU build of torch trains on the CPU.
    assert vit["device"] == "cpu"


@pytest.mark.slurm
def test_targets_equal_a_local_run(slurm_build):
    workdir, _, local, _ = slurm_build
    for rel in [TARGET] + [f"results/runs/{rid}/metrics_test.csv" for rid in (VIT, LGBM)]:
        assert (workdir / rel).read_bytes() == (local / rel).read_bytes(), rel
    local_job = json.loads((local / "results" / "runs" / VIT / "metrics.json").read_text())["job"]
    assert local_job["slurm_job_id"] is None


def _wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slurm
def test_a_requeued_training_job_resumes_from_its_checkpoint(slurm_build, overlay):
    """Preemption: the ViT's job is requeued by Slurm after its first checkpoint; the restarted job
    resumes from last.pt and ends with the validation metrics of the uninterrupted local run."""
    workdir, _, local, env = slurm_build
    run_dir = workdir / "results" / "runs" / VIT
    for name in ("last.pt", "best.pt", "history.csv"):
        (run_dir / name).unlink()
    proc = subprocess.Popen(slurm_command(workdir, f"results/runs/{VIT}/metrics.json", "--forcerun", "train_run",
                                          "--configfile", SMOKE, overlay, timeout=240),
                            cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        _wait_for(lambda: submitted_job_ids("".join(lines)), 120, "the job's submission")
        (job_id,) = submitted_job_ids("".join(lines))
        _wait_for((run_dir / "last.pt").exists, 120, "the first checkpoint")
        subprocess.run(["scontrol", "requeue", job_id], env=env, check=True)
        # Slurm holds a requeued job for two minutes (BeginTime); release it at once
        _wait_for(lambda: subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], env=env, capture_output=True,
                                         text=True).stdout.strip() == "PENDING", 60, "the job to be pending")
        subprocess.run(["scontrol", "update", f"jobid={job_id}", "starttime=now"], env=env, check=True)
        rc = proc.wait(timeout=260)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
    reader.join(timeout=10)
    out = "".join(lines)
    assert rc == 0, out[-4000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["job"]["slurm_job_id"] == job_id
    # (the plugin's job step drops SLURM_RESTART_COUNT from the job's environment; ask Slurm)
    shown = subprocess.run(["scontrol", "show", "job", job_id], env=env, capture_output=True, text=True).stdout
    assert "Restarts=1" in shown, shown
    log = (workdir / "results" / "logs" / "runs" / f"{VIT}.log").read_text()
    resumed = re.search(r"resuming \S+ after epoch (\d+)", log)
    assert resumed and 1 <= int(resumed[1]) < 60, log[-2000:]
    local_metrics = json.loads((local / "results" / "runs" / VIT / "metrics.json").read_text())
    assert metrics["val"] == local_metrics["val"]   # exactly the uninterrupted run's result
    assert metrics["fit"]["best_epoch"] == local_metrics["fit"]["best_epoch"]


DDP = "vit-ddp-N200-s0"


@pytest.mark.slurm
def test_a_data_parallel_job_runs_as_one_slurm_job_of_two_tasks(slurm_build, tmp_path):
    """training.devices: 2 through the profile: one Slurm job with two tasks (and two GPUs, which the
    CI node's are in name only), whose script starts the ranks with srun; they join one gloo group
    on the CPU and train the run (4 epochs: the two ranks against one process are compared in
    tests/unit/training/test_distributed.py)."""
    workdir, _, _, env = slurm_build
    ddp_group = {**RUNS_OVERLAY["runs"][0], "name": "vit-ddp", "train": {"epochs": 4, "devices": 2}}
    overlay = tmp_path / "ddp.yaml"
    overlay.write_text(yaml.safe_dump({"runs": [*RUNS_OVERLAY["runs"], ddp_group]}))
    r = snakemake_slurm(workdir, env, f"results/runs/{DDP}/metrics.json", "--configfile", SMOKE, overlay, timeout=240)
    assert r.returncode == 0, r.stdout[-6000:]
    (job_id,) = submitted_job_ids(r.stdout)
    shown = subprocess.run(["scontrol", "show", "job", job_id], env=env, capture_output=True, text=True).stdout
    assert "NumTasks=2" in shown, shown
    log = (workdir / "results" / "logs" / "runs" / f"{DDP}.log").read_text()
    assert "data-parallel training on 2 processes (srun)" in log, log[-3000:]
    metrics = json.loads((workdir / "results" / "runs" / DDP / "metrics.json").read_text())
    assert metrics["fit"]["devices"] == 2 and metrics["job"]["slurm_job_id"] == job_id
    assert metrics["fit"]["steps"] == 4 * -(-200 // 64)  # each step one global batch (smoke: 64), split in two


@pytest.mark.slurm
def test_a_failing_job_fails_the_workflow(slurm_build, overlay):
    """A subset file of the wrong size makes the LightGBM training job fail inside Slurm."""
    workdir, _, _, env = slurm_build
    subset = workdir / "results" / "data" / "subsets" / "N200.npy"
    np.save(subset, np.arange(5, dtype=np.int64))
    r = snakemake_slurm(workdir, env, f"results/runs/{LGBM}/metrics.json", "--forcerun", "train_run",
                        "--configfile", SMOKE, overlay, timeout=180)
    assert r.returncode != 0, r.stdout[-4000:]
    assert r.returncode != 124, "snakemake hung and was stopped by the timeout"
    assert len(submitted_job_ids(r.stdout)) == 1
    log = (workdir / "results" / "logs" / "runs" / f"{LGBM}.log").read_text()
    assert "holds 5 rows, run lightgbm-N200-s0 needs N=200" in log
    assert not (workdir / "results" / "runs" / LGBM / "metrics.json").exists()


# ---------------------------------------------------------------- the GPU-hours of a dry run

PAPER = REPO / "config" / "paper.yaml"
PAPER_N = (50000, 100000, 200000, 500000, 1000000)
PAPER_EPOCHS = 200


def paper_vit_specs():
    """The paper config's ViT runs as the workflow expands them (the training defaults of the schema)."""
    cfg = load_config(PAPER)
    return {rid: s for rid, s in expand_runs(cfg["runs"], cfg["training"]).items() if s.model == "vit"}


def independent_flops_per_spectrum():
    """p16_h256_L6 at 4096 px: 256 patch tokens + CLS; parameters of the real model."""
    from specvit.models.vit import SpecViT, ViTConfig

    cfg = ViTConfig.from_preset("p16_h256_L6", 4096)
    n_params = sum(p.numel() for p in SpecViT(cfg).parameters())
    t = 4096 // 16 + 1
    return 6 * n_params * t + 12 * 6 * t * t * 256


def budget_lines(output):
    start = output.index("GPU budget of the")
    lines = output[start:].splitlines()
    jobs = [ln for ln in lines[1:] if re.match(r"^  \S+-N\d+-s\d+ ", ln)]
    total = float(re.search(r"total ([\d.]+) GPU-hours", output[start:])[1])
    return lines[0], jobs, total


def paper_dry_run(workdir, *targets, overlays=()):
    if not PLUGIN:
        pytest.skip("snakemake-executor-plugin-slurm is not installed (pip install -e '.[slurm]')")
    return run_snakemake(workdir, "-n", "--profile", PROFILE, *targets, "--configfile", PAPER, *overlays)


def test_dry_run_on_the_paper_config_prints_the_gpu_hours(tmp_path):
    # the main runs' jobs (the paper config's ablations add many more GPU jobs)
    targets = [f"results/runs/{rid}/metrics.json" for rid in [*paper_vit_specs(), "lightgbm-N1000000-s0"]]
    r = paper_dry_run(tmp_path, *targets)
    assert r.returncode == 0, r.stdout[-4000:]
    head, jobs, total = budget_lines(r.stdout)
    assert "5 stale job(s)" in head and len(jobs) == 5
    assert all("1 GPU" in j and "from fallback" in j for j in jobs)
    # fallback: N x epochs x FLOPs at 50 TFLOP/s (cluster.gpu_tflops) plus 300 s per job
    expected = sum(n * PAPER_EPOCHS * independent_flops_per_spectrum() / 50e12 + 300 for n in PAPER_N) / 3600
    assert total == pytest.approx(expected, abs=0.01)
    # the ViT jobs ask Slurm for one GPU, LightGBM for none (and for more memory at the same N)
    def resources(rid):
        text = re.search(rf"output: results/runs/{rid}/metrics.json.*?resources: ([^\n]*)", r.stdout, re.S)[1]
        return dict(kv.split("=", 1) for kv in text.split(", "))

    vit, lgbm = resources("vit-p16_h256_L6-N1000000-s0"), resources("lightgbm-N1000000-s0")
    assert vit["gpu"] == "1" and lgbm["gpu"] == "0"
    assert int(lgbm["mem_mb"]) > int(vit["mem_mb"]) > int(resources("vit-p16_h256_L6-N50000-s0")["mem_mb"])
    # time limit: 2 x the estimate (cluster.runtime_margin)
    vit_seconds = 1e6 * PAPER_EPOCHS * independent_flops_per_spectrum() / 50e12 + 300
    assert int(vit["runtime"]) == pytest.approx(2 * vit_seconds / 60, abs=1)


def test_a_dry_run_prices_data_parallel_runs_for_their_gpus(tmp_path):
    """training.devices: 4 on the paper config: each main ViT job asks Slurm for 4 GPUs and 4 tasks of
    `threads` CPUs on one node (and 4 processes' memory), and is priced as 4 GPUs for its time at
    cluster.ddp_efficiency (0.9) of ideal scaling."""
    overlay = tmp_path / "devices.yaml"
    overlay.write_text(yaml.safe_dump({"training": {"devices": 4}}))
    targets = [f"results/runs/{rid}/metrics.json" for rid in paper_vit_specs()]
    r = paper_dry_run(tmp_path, *targets, overlays=[overlay])  # laid over the paper config
    assert r.returncode == 0, r.stdout[-4000:]
    head, jobs, total = budget_lines(r.stdout)
    assert len(jobs) == 5 and all(" 4 GPU " in j and "x 4 GPUs at 90% of ideal scaling" in j for j in jobs)
    wall = {n: n * PAPER_EPOCHS * independent_flops_per_spectrum() / (50e12 * 4 * 0.9) + 300 for n in PAPER_N}
    assert total == pytest.approx(sum(4 * s for s in wall.values()) / 3600, abs=0.01)
    text = re.search(r"output: results/runs/vit-p16_h256_L6-N1000000-s0/metrics.json.*?resources: ([^\n]*)",
                     r.stdout, re.S)[1]
    res = dict(kv.split("=", 1) for kv in text.split(", "))
    assert {k: res[k] for k in ("gpu", "tasks", "tasks_per_gpu", "cpus_per_task", "nodes", "mpi")} == \
        {"gpu": "4", "tasks": "4", "tasks_per_gpu": "1", "cpus_per_task": "8", "nodes": "1", "mpi": "srun"}
    one = paper_vit_specs()["vit-p16_h256_L6-N1000000-s0"]
    assert int(res["mem_mb"]) == 4 * cluster.run_mem_mb(one, 4096, 20000)
    assert int(res["runtime"]) == pytest.approx(2 * wall[1000000] / 60, abs=1)


def test_dry_run_counts_only_the_planned_jobs_and_uses_benchmark_records(tmp_path):
    """A GPU record of an earlier N = 50k run (1,800 s for 200 epochs) prices every planned ViT job;
    asking for one run's output plans (and prices) that one job only."""
    specs = paper_vit_specs()
    rid = "vit-p16_h256_L6-N50000-s0"
    run_dir = tmp_path / "results" / "runs" / rid
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps(specs[rid].to_dict()))
    (run_dir / "metrics.json").write_text(json.dumps({"device": "cuda:0", "fit": {"epochs": PAPER_EPOCHS}}))
    bench = tmp_path / "results" / "benchmarks" / "runs"
    bench.mkdir(parents=True)
    (bench / f"{rid}.tsv").write_text("s\th:m:s\tmax_rss\n1800.0\t0:30:00\t9000\n")

    r = paper_dry_run(tmp_path, "results/runs/vit-p16_h256_L6-N1000000-s0/metrics.json")
    assert r.returncode == 0, r.stdout[-4000:]
    head, jobs, total = budget_lines(r.stdout)
    assert len(jobs) == 1 and "vit-p16_h256_L6-N1000000-s0" in jobs[0] and "from benchmarks" in jobs[0]
    assert total == pytest.approx(1800.0 * 1000000 / 50000 / 3600, abs=0.01)

    r = paper_dry_run(tmp_path, *[f"results/runs/{rid}/metrics.json" for rid in specs])
    _, jobs, total = budget_lines(r.stdout)
    assert len(jobs) == 5 and all("from benchmarks" in j for j in jobs)
    assert total == pytest.approx(1800.0 * sum(PAPER_N) / 50000 / 3600, abs=0.01)


def test_a_dry_run_of_many_gpu_jobs_sums_them_per_run_group(tmp_path):
    """The whole paper config (its ablations included) plans more GPU jobs than are listed one by one."""
    r = paper_dry_run(tmp_path)
    assert r.returncode == 0, r.stdout[-4000:]
    start = r.stdout.index("GPU budget of the")
    n_jobs = int(re.search(r"GPU budget of the (\d+) stale", r.stdout)[1])
    assert n_jobs > cluster.MAX_JOB_LINES
    groups = re.findall(r"^  (\S+)\s+(\d+) job\(s\)\s+([\d.]+) GPU-h$", r.stdout[start:], re.M)
    # the main ViT group: its five N, and its largest N at the two more seeds of eval.main_seeds
    assert ("vit-p16_h256_L6", "7") in [(g, n) for g, n, _ in groups]
    assert sum(int(n) for _, n, _ in groups) == n_jobs
    total = float(re.search(r"total ([\d.]+) GPU-hours", r.stdout[start:])[1])
    assert total == pytest.approx(sum(float(h) for _, _, h in groups), abs=0.05 * len(groups))


def test_the_studies_gpu_jobs_are_sized_and_priced_like_training_runs(tmp_path, monkeypatch):
    """Pre-training, fine-tune and shift jobs train ViTs too: they get the GPU partition, a time
    limit and memory from their own N and epochs, and enter the dry run's GPU-hours."""
    monkeypatch.setenv("SPECVIT_SLURM_GPU_PARTITION", "gpuq")
    monkeypatch.setenv("SPECVIT_SLURM_PARTITION", "cpuq")
    targets = ["results/studies/pretrain/finetune-N10000-s0/metrics.json",
               "results/studies/domain_shift/rv/metrics.csv", "results/runs/vit-p16_h256_L6-N1000000-s0/metrics.json"]
    r = paper_dry_run(tmp_path, *targets)
    assert r.returncode == 0, r.stdout[-4000:]

    def resources(output):
        text = re.search(rf"output: {output}.*?resources: ([^\n]*)", r.stdout, re.S)[1]
        return dict(kv.split("=", 1) for kv in text.split(", "))

    pretrain = resources("results/studies/pretrain/pretrained/metrics.json")
    finetune, shift, main = (resources(t) for t in targets)
    assert all(res["gpu"] == "1" and res["slurm_partition"] == "gpuq" for res in (pretrain, finetune, shift, main))
    # pre-training: the main run's N (1M), epochs and architecture, so its time and memory
    assert abs(int(pretrain["runtime"]) - int(main["runtime"])) <= 1 and pretrain["mem_mb"] == main["mem_mb"]
    # the fine-tune (10k) and the shift's fine-tune (10k x 10 epochs) are small jobs
    assert int(shift["runtime"]) < int(finetune["runtime"]) < int(main["runtime"])
    _, jobs, total = budget_lines(r.stdout)
    ids = sorted(j.split()[0] for j in jobs)
    assert ids == ["pretrain-finetune-N10000-s0", "pretrain-pretrained-N1000000-s0", "shift-rv-finetune-N10000-s0",
                   "vit-p16_h256_L6-N1000000-s0"]
    hours = {j.split()[0]: float(j.split()[3]) for j in jobs}
    assert hours["pretrain-pretrained-N1000000-s0"] == pytest.approx(hours["vit-p16_h256_L6-N1000000-s0"], rel=0.01)
    assert total == pytest.approx(sum(hours.values()), abs=0.02)


def test_a_dry_run_without_gpu_jobs_prints_no_budget(tmp_path):
    r = paper_dry_run(tmp_path, "results/runs/ridge-N50000-s0/metrics.json")
    assert r.returncode == 0, r.stdout[-4000:]
    assert "GPU budget" not in r.stdout


# ---------------------------------------------------------------- sizing functions


def _record(spec, seconds, epochs, device):
    return cluster.Record(spec.run_id, spec, seconds, epochs, device)


def test_estimates_use_only_comparable_records():
    specs = paper_vit_specs()
    n50, n1m = specs["vit-p16_h256_L6-N50000-s0"], specs["vit-p16_h256_L6-N1000000-s0"]
    tiny = expand_runs([{"name": "t", "model": "vit", "preset": "tiny", "n_train": [50000]}], {"epochs": 200})
    tiny = next(iter(tiny.values()))
    records = [_record(n50, 1000.0, 200, "cuda:0"), _record(n50, 3000.0, 200, "cuda"),
               _record(n50, 9.0, 200, "cpu"),            # a laptop CPU says nothing about a GPU
               _record(tiny, 5.0, 200, "cuda:0")]         # another architecture
    est = cluster.estimate_seconds(n1m, records, 4096, 50.0)
    assert est.source == "benchmarks"
    assert est.seconds == pytest.approx(2000.0 / (50000 * 200) * 1000000 * 200)   # median of 1000 and 3000
    cpu_only = cluster.estimate_seconds(n1m, records[2:3], 4096, 50.0)
    assert cpu_only.source == "fallback"
    # baselines: a record with the same settings, none for other settings (then no estimate)
    lgb = expand_runs([{"name": "l", "model": "lightgbm", "params": {"num_leaves": 15}, "n_train": [1000, 4000]}])
    lgb_small, lgb_big = lgb["l-N1000-s0"], lgb["l-N4000-s0"]
    assert cluster.estimate_seconds(lgb_big, [_record(lgb_small, 10.0, 1, "cpu")], 4096, 50.0).seconds == 40.0
    other = expand_runs([{"name": "l", "model": "lightgbm", "params": {"num_leaves": 63}, "n_train": [1000]}])
    assert cluster.estimate_seconds(lgb_big, [_record(other["l-N1000-s0"], 10.0, 1, "cpu")], 4096, 50.0) is None


def test_load_records_reads_finished_runs_only(tmp_path):
    spec = paper_vit_specs()["vit-p16_h256_L6-N50000-s0"]
    for rid, with_metrics in ((spec.run_id, True), ("vit-p16_h256_L6-N100000-s0", False)):
        d = tmp_path / "runs" / rid
        d.mkdir(parents=True)
        (d / "run.json").write_text(json.dumps(spec.to_dict()))
        if with_metrics:
            (d / "metrics.json").write_text(json.dumps({"device": "cuda:0", "fit": {"epochs": 150}}))
        (tmp_path / "benchmarks" / "runs").mkdir(parents=True, exist_ok=True)
        (tmp_path / "benchmarks" / "runs" / f"{rid}.tsv").write_text("s\th:m:s\n120.5\t0:02:00\n")
    (rec,) = cluster.load_records(tmp_path)
    assert (rec.run_id, rec.seconds, rec.epochs, rec.device) == (spec.run_id, 120.5, 150, "cuda:0")
    assert rec.seconds_per_item == pytest.approx(120.5 / (50000 * 150))


def test_time_limits_memory_and_threads():
    est = cluster.Estimate(3600.0, "benchmarks", "")
    assert cluster.runtime_minutes(est, 2.0, 720) == 120
    assert cluster.runtime_minutes(est, 2.0, 720, attempt=2) == 240     # a retry gets twice the time
    assert cluster.runtime_minutes(None, 2.0, 720) == 720
    assert cluster.runtime_minutes(cluster.Estimate(1.0, "fallback", ""), 2.0, 720) == cluster.MIN_RUNTIME_MIN
    specs = paper_vit_specs()
    small, big = specs["vit-p16_h256_L6-N50000-s0"], specs["vit-p16_h256_L6-N1000000-s0"]
    # flux + error of 1M spectra of 4096 float32 pixels alone are 31,250 MiB
    assert cluster.run_mem_mb(big, 4096, 20000) > 1.25 * 31250 > cluster.run_mem_mb(small, 4096, 20000)
    lgb = next(iter(expand_runs([{"name": "l", "model": "lightgbm", "n_train": [1000]}]).values()))
    assert cluster.run_threads(lgb, {"threads": 8, "cluster": {"lightgbm_threads": 32}}) == 32
    assert cluster.run_threads(lgb, {"threads": 8, "cluster": {"lightgbm_threads": None}}) == 8
    assert cluster.run_threads(big, {"threads": 8, "cluster": {"lightgbm_threads": 32}}) == 8


def test_partition_and_gpu_type_come_from_the_environment():
    vit = paper_vit_specs()["vit-p16_h256_L6-N50000-s0"]
    lgb = next(iter(expand_runs([{"name": "l", "model": "lightgbm", "n_train": [1000]}]).values()))
    env = {"SPECVIT_SLURM_PARTITION": "cpu", "SPECVIT_SLURM_GPU_PARTITION": "gpu", "SPECVIT_SLURM_GPU_MODEL": "a100"}
    assert (cluster.gpu_partition(vit, env), cluster.gpu_partition(lgb, env)) == ("gpu", "cpu")
    assert (cluster.gpu_model(vit, env), cluster.gpu_model(lgb, env)) == ("a100", "")
    assert cluster.gpu_partition(vit, {"SPECVIT_SLURM_PARTITION": "all"}) == "all"
    assert cluster.gpu_partition(vit, {}) == "" and cluster.gpu_model(vit, {}) == ""


def test_job_environment_records_slurm_and_the_gpu_mask():
    job = job_environment({"SLURM_JOB_ID": "17", "CUDA_VISIBLE_DEVICES": "0", "PATH": "/bin"})
    assert job["slurm_job_id"] == "17" and job["cuda_visible_devices"] == "0" and job["slurm_partition"] is None
    assert describe(job).startswith("job: slurm_job_id=17 cuda_visible_devices=0 host=")
