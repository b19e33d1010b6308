"""Starting a data-parallel run (``training.devices`` = D > 1): D processes, each a rank of PyTorch DDP.

The training job (rule ``train_run``, ``workflow/scripts/train_run.py``) calls ``launch_run``,
which starts D copies of this module's worker and waits for them:

* inside a Slurm allocation (``SLURM_JOB_ID`` set: the profile's multi-GPU jobs ask for D tasks
  and D GPUs on one node) with ``srun --ntasks=D``, the rendezvous at this host on a free port;
* elsewhere with ``torchrun --standalone --nproc-per-node=D`` (``python -m torch.distributed.run``).

Each worker joins the process group (NCCL on GPUs, gloo on CPUs), takes GPU ``local rank`` when
there are GPUs, and runs ``specvit.training.run.execute_run`` like a single-process job: every
rank trains on its shard of each batch (``specvit.training.distributed``), rank 0 writes the run
folder and logs; the others are silent unless they fail. The run's arguments travel in the
environment variable ``SPECVIT_DDP_RUN`` (JSON), which torchrun and srun pass on.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from specvit.training.spec import RunSpec

ARGS_VARIABLE = "SPECVIT_DDP_RUN"


def in_slurm_allocation(environ=None) -> bool:
    return bool((os.environ if environ is None else environ).get("SLURM_JOB_ID"))


def launch_command(devices: int, threads: int, environ=None) -> list[str]:
    """The command that starts ``devices`` workers with ``threads`` CPU threads each."""
    worker = [sys.executable, "-m", __name__]
    if in_slurm_allocation(environ):
        return ["srun", f"--ntasks={devices}", "--nodes=1", f"--cpus-per-task={threads}", "--kill-on-bad-exit=1",
                "--export=ALL", *worker]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={devices}",
            "-m", __name__]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_run(spec: RunSpec, files, out_dir, *, val_noise_seed: int, threads: int, job: dict | None = None,
               devices: int) -> None:
    """Train ``spec`` on ``devices`` processes (``threads`` CPU threads in all, shared among them)
    and wait; raises if any rank failed (their errors are in this process's output)."""
    per_rank = max(1, threads // devices)
    args = {"spec": spec.to_dict(), "files": {k: str(getattr(files, k)) for k in ("train", "val", "subset")},
            "out_dir": str(out_dir), "val_noise_seed": val_noise_seed, "threads": per_rank, "job": job}
    env = dict(os.environ, **{ARGS_VARIABLE: json.dumps(args)}, PYTHONUNBUFFERED="1", OMP_NUM_THREADS=str(per_rank))
    if in_slurm_allocation(env):  # one node: the ranks meet at this host (torchrun finds its own port)
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
    cmd = launch_command(devices, per_rank, env)
    launcher = "srun" if cmd[0] == "srun" else "torchrun"
    print(f"{spec.run_id}: data-parallel training on {devices} processes ({launcher}), {per_rank} thread(s) "
          f"each: {' '.join(cmd)}", flush=True)
    code = subprocess.run(cmd, env=env).returncode
    if code != 0:
        raise RuntimeError(f"{spec.run_id}: the data-parallel training ({launcher}, {devices} processes) exited "
                           f"with status {code}; the ranks' errors are above")


def rank_of(environ) -> tuple[int, int, int]:
    """(rank, world size, local rank) of this worker, set by torchrun or by srun."""
    if "RANK" in environ and "WORLD_SIZE" in environ:
        return int(environ["RANK"]), int(environ["WORLD_SIZE"]), int(environ.get("LOCAL_RANK", 0))
    return int(environ["SLURM_PROCID"]), int(environ["SLURM_NTASKS"]), int(environ.get("SLURM_LOCALID", 0))


def worker(environ=None) -> None:
    """One rank: join the process group, run the run, leave the group."""
    import torch
    import torch.distributed as dist

    from specvit.training.config import TrainConfig
    from specvit.training.run import RunFiles, execute_run

    environ = os.environ if environ is None else environ
    args = json.loads(environ[ARGS_VARIABLE])
    spec = RunSpec(**{**args["spec"], "labels": tuple(args["spec"]["labels"])})
    rank, world, local = rank_of(environ)
    gpus = TrainConfig.from_dict(spec.train).device != "cpu" and torch.cuda.is_available()
    if gpus:
        torch.cuda.set_device(local % torch.cuda.device_count())
    torch.set_num_threads(args["threads"])
    dist.init_process_group("nccl" if gpus else "gloo", init_method="env://", rank=rank, world_size=world)
    try:
        execute_run(spec, RunFiles(**args["files"]), Path(args["out_dir"]), val_noise_seed=args["val_noise_seed"],
                    threads=args["threads"], job=args["job"], log=print if rank == 0 else (lambda *_: None))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    worker()
