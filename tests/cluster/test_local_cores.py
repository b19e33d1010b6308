"""`--cores` larger than the machine: Snakemake's own limit on the threads of the jobs running at once
is lowered to the machine's CPUs (specvit.pipeline.job_resources.cap_local_cores), locally only."""
import re

from snakemake.resources import Resources

from conftest import REPO, run_snakemake
from specvit.pipeline.job_resources import cap_local_cores, usable_cpus


def limits(cores, nodes=None):
    res = Resources.from_mapping({})
    res["_cores"], res["_nodes"] = cores, nodes
    return res


def test_cores_beyond_the_cpus_are_lowered_to_them_and_nothing_else_changes():
    res = limits(8)
    assert cap_local_cores(res, available=2) == 8 and res["_cores"].value == 2
    res = limits(2)
    assert cap_local_cores(res, available=2) is None and res["_cores"].value == 2      # as many: kept
    res = limits(1)
    assert cap_local_cores(res, available=4) is None and res["_cores"].value == 1      # fewer: kept
    res = limits(None, nodes=50)                                                       # a cluster executor
    assert cap_local_cores(res, available=2) is None and res["_cores"].value is None
    assert usable_cpus() >= 1


def test_a_local_plan_with_more_cores_than_cpus_gives_no_job_more_threads_than_cpus(tmp_path):
    """The paper config (threads 8, LightGBM 32) planned with --cores far above this machine's CPUs:
    every job's threads are within the CPUs, and the run says why."""
    cpus = usable_cpus()
    r = run_snakemake(tmp_path, "-n", "--cores", cpus + 40, "--configfile", REPO / "config" / "paper.yaml",
                      "--until", "train_run", "--", "results/runs/lightgbm-N50000-s0/metrics.json",
                      "results/runs/vit-p16_h256_L6-N50000-s0/metrics.json")
    assert r.returncode == 0, r.stdout[-3000:]
    assert f"--cores {cpus + 40} is more than the {cpus} CPUs of this machine" in r.stdout
    threads = [int(t) for t in re.findall(r"^\s+threads: (\d+)$", r.stdout, re.M)]
    assert max(threads, default=1) == min(cpus, 32)  # (a job of one thread prints none)
