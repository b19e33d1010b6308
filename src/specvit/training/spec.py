"""What one training run is: its spec (model, N, seed, settings) and its readable, stable id.

Torch-free: the workflow builds the spec of every run when it loads the config."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one training run (its params in the workflow)."""

    run_id: str
    group: str
    model: str
    n_train: int
    seed: int
    noise_level: float = 1.0
    labels: tuple[str, ...] = ("logg",)
    vit: dict = field(default_factory=dict)     # ViT: preset resolved with overrides
    params: dict = field(default_factory=dict)  # baselines: constructor settings
    train: dict = field(default_factory=dict)   # ViT: trainer settings
    max_eval_stars: int | None = None           # predict only the first stars of val/test (slow models)
    noise_copies: int = 1                       # LightGBM, Ridge: seeded noisy draws of every training spectrum

    def to_dict(self) -> dict:
        d = json.loads(json.dumps(asdict(self)))
        if d["noise_copies"] == 1:  # written only when set, so the specs (and outputs) of other runs stay as they were
            del d["noise_copies"]
        return d


def run_id(group: str, n_train: int, seed: int) -> str:
    return f"{group}-N{n_train}-s{seed}"
