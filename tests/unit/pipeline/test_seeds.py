"""One seed table for every random stream of the workflow."""
import pytest

from specvit.pipeline.seeds import SEED_OFFSETS, stream_seed


def test_the_offsets_are_those_the_results_were_built_with():
    """Changing an offset changes the data or a noise draw, and so every number: they are fixed."""
    assert SEED_OFFSETS == {"train": 0, "val": 1, "test": 2, "subsets": 3, "calibration": 4, "val_noise": 5,
                            "test_noise": 6, "mmse_sim": 7, "finetune_subsets": 101, "shift": 102,
                            "shift_finetune": 103, "nuisance_train": 104, "nuisance_val": 105, "nuisance_test": 106}


def test_streams_follow_the_master_seed_and_never_share_a_seed():
    for master in (0, 42, 1000):
        seeds = [stream_seed({"seed": master}, s) for s in SEED_OFFSETS]
        assert len(set(seeds)) == len(seeds) and min(seeds) == master
    assert stream_seed({"seed": 42}, "test_noise") == 48 and stream_seed({"seed": 43}, "shift") == 145


def test_an_unknown_stream_is_refused():
    with pytest.raises(KeyError, match="unknown random stream 'noise'"):
        stream_seed({"seed": 42}, "noise")
