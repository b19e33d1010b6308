"""Data-parallel training (DDP with the gloo backend, on the CPU): a batch's shards, two processes
against one with the same global batch, a resumed two-process run, and the job's launcher."""
import json
import os
import socket
import sys

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from specvit.training.ddp_launch import launch_command, rank_of
from specvit.training.distributed import World
from toy_task import tiny_model, toy_data

BATCH = 16
N_TOY = 257  # 17 batches; the last holds one row, so rank 1 has none of it (share 0)


def test_a_batch_splits_into_disjoint_shards_whose_weighted_losses_sum_to_the_batch_mean():
    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 16, 17):
        per_row = torch.from_numpy(rng.normal(size=n))
        for size in (2, 3, 4):
            covered, total = [], 0.0
            for rank in range(size):
                world = World(rank, size)
                x, y, share = world.split(per_row[:, None], per_row[:, None])
                lo, hi = world.bounds(n)
                covered += list(range(lo, hi))
                assert (share == 0.0) == (hi == lo) and x.shape[0] == max(1, hi - lo)
                total += share * float(y.mean())
            assert covered == list(range(n))  # disjoint, in order, everything once
            assert total / size == pytest.approx(float(per_row.mean()))  # what DDP's averaged gradient sees
    assert World().split(per_row[:, None], per_row[:, None])[2] is None  # one process: untouched


def test_ranks_come_from_torchrun_or_srun_and_the_launcher_fits_the_place():
    assert rank_of({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}) == (1, 2, 1)
    assert rank_of({"SLURM_PROCID": "3", "SLURM_NTASKS": "4", "SLURM_LOCALID": "3"}) == (3, 4, 3)
    local = launch_command(2, 1, environ={})
    assert local[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    slurm = launch_command(4, 8, environ={"SLURM_JOB_ID": "17"})
    assert slurm[:5] == ["srun", "--ntasks=4", "--nodes=1", "--cpus-per-task=8", "--kill-on-bad-exit=1"]
    assert slurm[-2:] == ["-m", "specvit.training.ddp_launch"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Killed(Exception):
    pass


def _two_ranks(rank, port, root):
    """One rank of the spawned pair: a straight run on the host loader and on resident data, and a
    run killed (on both ranks) after its second epoch, then resumed by a fresh model."""
    import torch.distributed as dist

    from specvit.training import trainer
    from specvit.training.trainer import TrainingData, train

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    data = TrainingData(("logg",), *toy_data(n=N_TOY))
    quiet = lambda *a: None  # noqa: E731
    for name, cfg in _configs().items():
        train(tiny_model(), cfg, data, root / name, log=quiet)
    end_epoch = trainer._end_epoch

    def end_then_die(r, state, epoch, trained, log):
        end_epoch(r, state, epoch, trained, log)
        if epoch == 1:
            raise _Killed

    trainer._end_epoch = end_then_die
    with pytest.raises(_Killed):
        train(tiny_model(), _configs()["host"], data, root / "resumed", log=quiet)
    trainer._end_epoch = end_epoch
    messages = []
    train(tiny_model(seed=99), _configs()["host"], data, root / "resumed", log=messages.append)
    if rank == 0:
        (root / "resumed.log").write_text("\n".join(messages))
    dist.destroy_process_group()


def _configs():
    from specvit.training.trainer import TrainConfig

    base = dict(epochs=3, batch_size=BATCH, lr=3e-3, seed=5)
    return {"host": TrainConfig(**base), "resident": TrainConfig(**base, device_data="resident")}


def weights(path):
    return torch.load(path, weights_only=False)["model"]


def assert_same_training(a, b, lr=3e-3, steps=3 * 17):
    """Weights of two runs that differ by float32 rounding only (the ranks' summed gradients): the
    bulk agrees to rounding, every parameter within what Adam's normalised steps allow."""
    diff = torch.cat([(a[k] - b[k]).abs().flatten() for k in a])
    assert diff.median() < 1e-6 and diff.max() < min(1e-3, 2 * lr * steps)


def test_two_processes_train_like_one_and_resume_exactly(tmp_path):
    from specvit.training.trainer import TrainingData, train

    mp.spawn(_two_ranks, args=(_free_port(), tmp_path), nprocs=2)
    data = TrainingData(("logg",), *toy_data(n=N_TOY))
    torch.set_num_threads(1)
    for name, cfg in _configs().items():
        train(tiny_model(), cfg, data, tmp_path / f"one-{name}", log=lambda *a: None)
        assert_same_training(weights(tmp_path / name / "last.pt"), weights(tmp_path / f"one-{name}" / "last.pt"))
    straight, resumed = weights(tmp_path / "host" / "last.pt"), weights(tmp_path / "resumed" / "last.pt")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    assert "after epoch 2" in (tmp_path / "resumed.log").read_text()
    assert (tmp_path / "resumed" / "history.csv").read_text().count("\n") == 4  # written once per epoch


def test_the_job_launches_two_ranks_with_torchrun(tmp_path, monkeypatch, capfd):
    """``launch_run`` as the training rule calls it: torchrun starts two ranks, rank 0 writes the run
    folder, and the weights are the single-process run's with the same global batch."""
    from specvit.data.simulate import generate_split
    from specvit.data.subsets import save_subset
    from specvit.pipeline.runs import expand_runs
    from specvit.training.ddp_launch import launch_run
    from specvit.training.run import RunFiles, execute_run

    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    generate_split(tmp_path / "train.h5", 100, seed=1, progress=False)
    generate_split(tmp_path / "val.h5", 40, seed=2, split_name="val", progress=False)
    save_subset(tmp_path / "N100.npy", np.arange(100))
    files = RunFiles(train=tmp_path / "train.h5", val=tmp_path / "val.h5", subset=tmp_path / "N100.npy")
    group = {"name": "vit", "model": "vit", "preset": "tiny", "n_train": [100],
             "train": {"epochs": 2, "batch_size": 30}}
    (one,) = expand_runs([group]).values()
    (two,) = expand_runs([{**group, "train": {**group["train"], "devices": 2}}]).values()
    launch_run(two, files, tmp_path / "two", val_noise_seed=9, threads=2, devices=2, job={"host": "here"})
    out = capfd.readouterr().out
    assert "data-parallel training on 2 processes (torchrun), 1 thread(s) each" in out
    assert out.count("epoch 2/2") == 1  # rank 0 logs, rank 1 is silent
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert metrics["fit"]["devices"] == 2 and metrics["job"] == {"host": "here"}
    torch.set_num_threads(1)
    execute_run(one, files, tmp_path / "one", val_noise_seed=9, threads=1, log=lambda *a: None)
    assert_same_training(weights(tmp_path / "two" / "last.pt"), weights(tmp_path / "one" / "last.pt"), steps=8)


def test_a_failing_rank_fails_the_launch(tmp_path, monkeypatch):
    """Whatever the launcher's exit status (a rank that raised), the job fails with it, naming the run."""
    import specvit.training.ddp_launch as ddp_launch
    from specvit.pipeline.runs import expand_runs
    from specvit.training.run import RunFiles

    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setattr(ddp_launch, "launch_command", lambda *a, **k: [sys.executable, "-c", "raise SystemExit(3)"])
    (spec,) = expand_runs([{"name": "vit", "model": "vit", "preset": "tiny", "n_train": [10],
                            "train": {"devices": 2}}]).values()
    files = RunFiles(train=tmp_path / "t.h5", val=tmp_path / "v.h5", subset=tmp_path / "s.npy")
    with pytest.raises(RuntimeError, match=r"vit-N10-s0: the data-parallel training \(torchrun, 2 processes\) "
                                           r"exited with status 3"):
        ddp_launch.launch_run(spec, files, tmp_path / "out", val_noise_seed=1, threads=2, devices=2)
