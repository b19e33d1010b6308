"""The seed of every random stream of the workflow, derived from the config's master ``seed``.

Each stream is ``seed + offset`` with its own fixed offset, so changing the master seed changes
all of them together and no two streams share a seed. The offsets are part of the results: a
changed offset changes the data or the noise draws, and with them every number.
"""
from __future__ import annotations

SEED_OFFSETS = {
    # the splits of the synthetic data set
    "train": 0,
    "val": 1,
    "test": 2,
    # the nested training subsets, the calibration tables, the fixed noise of the validation and test views
    "subsets": 3,
    "calibration": 4,
    "val_noise": 5,
    "test_noise": 6,
    # the noise draws and importance samples of the simulated Bayes bound (ceiling.mmse_sim)
    "mmse_sim": 7,
    # the studies: fine-tuning subsets of the pre-train -> fine-tune study, the shifts' shared systematics,
    # the labelled shifted set of the domain-shift fine-tune
    "finetune_subsets": 101,
    "shift": 102,
    "shift_finetune": 103,
    # the nuisance study's own splits
    "nuisance_train": 104,
    "nuisance_val": 105,
    "nuisance_test": 106,
}


def stream_seed(config: dict, stream: str) -> int:
    """The seed of ``stream`` (a key of ``SEED_OFFSETS``) for the config's master seed."""
    if stream not in SEED_OFFSETS:
        raise KeyError(f"unknown random stream {stream!r}; known: {sorted(SEED_OFFSETS)}")
    return int(config["seed"]) + SEED_OFFSETS[stream]
