"""The resources of the training rules: the cluster sizing of each job's run spec, and the GPU
ledger that a dry run prints."""
import numpy as np

from conftest import REPO
from specvit.data.writer import write_split
from specvit.physics.grid import N_PIXELS
from specvit.pipeline import cluster
from specvit.pipeline.config import load_config
from specvit.pipeline.job_resources import JobResources
from specvit.pipeline.runs import expand_runs

PAPER = REPO / "config" / "paper.yaml"


def test_the_resources_of_a_job_are_those_of_its_run_spec(tmp_path):
    config = load_config(PAPER)
    specs = expand_runs(config["runs"], config["training"])
    jobs = JobResources(config, results=str(tmp_path / "results"))  # no benchmark records there
    vit, lgb = specs["vit-p16_h256_L6-N1000000-s0"], specs["lightgbm-N50000-s0"]
    spec_of = {"v": vit, "l": lgb}.__getitem__
    res = jobs.resources(lambda w: spec_of(w))
    assert res["mem_mb"]("v") == cluster.run_mem_mb(vit, N_PIXELS, config["data"]["n_val"])
    estimate = cluster.fallback_seconds(vit, N_PIXELS, config["cluster"]["gpu_tflops"])
    assert res["runtime"]("v", 2) == cluster.runtime_minutes(estimate, 2.0, 720, 2)
    assert res["runtime"]("l", 1) == 720              # a CPU job without records: cluster.cpu_runtime_min
    assert list(jobs.ledger.jobs) == [vit.run_id]     # only GPU jobs enter the ledger
    assert jobs.threads(lambda w: spec_of(w))("l") == 32 and jobs.threads(lambda w: spec_of(w))("v") == 8
    assert res["slurm_partition"]("v") == cluster.gpu_partition(vit) and res["gpu_model"]("l") == ""


def test_the_pixel_count_of_the_users_files(tmp_path):
    path = tmp_path / "train.h5"
    write_split(path, np.linspace(4000.0, 5000.0, 24), np.ones((3, 24), np.float32), np.ones((3, 24), np.float32),
                {"logg": np.ones(3, np.float32)}, {"source": "user"})
    config = load_config(overrides={"data": {"source": "hdf5", "train": str(path), "val": "v", "test": "t"}})
    assert JobResources(config).n_pixels == 24
    assert JobResources(load_config()).n_pixels == N_PIXELS
