"""The trainer's settings (``TrainConfig``), torch-free so the workflow can check every run's
settings when it starts without importing torch. The trainer is ``specvit.training.trainer``."""
from __future__ import annotations

from dataclasses import dataclass, field, fields

LOSSES = ("mse", "l1", "huber", "gaussian_nll")
LABEL_NORMS = ("standard", "minmax")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICE_DATA = ("auto", "resident", "stream")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; the defaults are the paper's except ``epochs`` (paper: 200)."""

    epochs: int = 30
    batch_size: int = 256
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup_epochs: float = 1.0
    min_lr: float = 1e-5
    clip: float = 0.5                 # max gradient norm; 0 disables clipping
    loss: str = "mse"
    huber_delta: float = 1.0
    label_norm: str = "standard"
    label_weights: dict = field(default_factory=dict)  # label -> loss weight (default 1)
    noise_level: float = 1.0
    seed: int = 0
    precision: str = "auto"           # auto: bf16 autocast on CUDA, fp32 on CPU
    device: str = "auto"
    on_nonfinite: str = "stop"        # stop | skip (skip the step and halve the learning rate)
    cache_mb: float = 4096.0          # training spectra held in RAM; larger subsets stream from HDF5
    fresh_noise: bool = True          # a new noise draw every epoch; False: one fixed draw per spectrum
    # fewest optimizer steps: small sets get more epochs (0: epochs alone). The workflow's default is
    # the schema's (training.min_steps: 2000, in every run spec); a TrainConfig built in code keeps 0.
    min_steps: int = 0
    device_data: str = "auto"         # auto | resident | stream: training spectra held in the device's memory
    device_data_budget: float = 0.5   # share of the device's memory the resident spectra may take
    compile: bool = False             # torch.compile the model for the training steps
    devices: int = 1                  # data-parallel processes (GPUs) of a run; > 1: DDP (specvit.training.ddp_launch)

    def __post_init__(self):
        for name, allowed in (("loss", LOSSES), ("label_norm", LABEL_NORMS), ("precision", PRECISIONS),
                              ("on_nonfinite", ("stop", "skip")), ("device_data", DEVICE_DATA)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"training.{name} = {getattr(self, name)!r} is not one of {allowed}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("training.epochs, batch_size and lr must be positive")
        if self.min_steps < 0:
            raise ValueError(f"training.min_steps = {self.min_steps!r}; expected 0 (off) or a positive step count")
        if not self.cache_mb > 0:
            raise ValueError(f"training.cache_mb = {self.cache_mb!r}; expected a positive size in MiB")
        if not 0 < self.device_data_budget <= 1:
            raise ValueError(f"training.device_data_budget = {self.device_data_budget!r}; expected a share of the "
                             f"device's memory in (0, 1]")
        if isinstance(self.devices, bool) or not isinstance(self.devices, int) or self.devices < 1:
            raise ValueError(f"training.devices = {self.devices!r}; expected a positive number of processes (GPUs)")
        if self.devices > 1 and self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"training.devices = {self.devices} with training.device = {self.device!r}: each "
                             f"process takes its own GPU; use device auto, cuda or cpu")

    def epochs_for(self, steps_per_epoch: int) -> int:
        """Epochs to train: ``epochs``, raised so that at least ``min_steps`` optimizer steps are taken
        (a few thousand spectra make few steps per epoch, and an epoch budget tuned for 50k starves them)."""
        return max(self.epochs, -(-self.min_steps // max(1, steps_per_epoch)))

    @classmethod
    def from_dict(cls, d: dict | None) -> TrainConfig:
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown training setting(s) {unknown}; known: {sorted(known)}")
        return cls(**d)
