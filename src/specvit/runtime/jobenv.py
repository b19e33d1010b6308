"""Where a job ran: the scheduler's job id, its GPUs and the host, as seen from inside the job.

Recorded in every run's ``metrics.json`` (key ``job``) and log, so a cluster run can be traced to
its Slurm job and one can check that a GPU job was handed a GPU (``CUDA_VISIBLE_DEVICES``).
"""
from __future__ import annotations

import os
import socket

# Slurm's variables (sbatch man page, "OUTPUT ENVIRONMENT VARIABLES") and the GPU mask it sets.
_VARIABLES = {
    "slurm_job_id": "SLURM_JOB_ID",
    "slurm_array_task_id": "SLURM_ARRAY_TASK_ID",
    "slurm_partition": "SLURM_JOB_PARTITION",
    "slurm_cpus_per_task": "SLURM_CPUS_PER_TASK",
    "cuda_visible_devices": "CUDA_VISIBLE_DEVICES",
}


def job_environment(environ=None) -> dict:
    """{key: value or None} of the scheduler variables above, plus the host name."""
    environ = os.environ if environ is None else environ
    out = {key: environ.get(var) for key, var in _VARIABLES.items()}
    out["host"] = socket.gethostname()
    return out


def describe(job: dict) -> str:
    """One log line: 'job: slurm_job_id=123 cuda_visible_devices=0 host=node1' (unset ones left out)."""
    return "job: " + " ".join(f"{k}={v}" for k, v in job.items() if v is not None)
