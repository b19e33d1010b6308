"""The embedded model carries the paper's log g information (foundation acceptance test)."""
import pytest
import torch

from specvit.physics.calibration import PAPER_CEILING_5D, calibration_tables
from specvit.physics.noise import PAPER_SNR


@pytest.fixture(scope="module")
def tables():
    torch.set_num_threads(2)
    return calibration_tables(n_stars=1024, seed=46, mags=sorted(PAPER_CEILING_5D))


def test_ceiling_matches_the_paper_within_0_03(tables):
    ceiling, _ = tables
    assert list(ceiling.columns) == ["mag", "snr_median", "ceiling_r2_5d_median", "ceiling_r2_1d_median",
                                     "paper_ceiling_r2_5d", "delta"]
    assert (ceiling["delta"].abs() < 0.03).all(), ceiling.to_string()
    # the 1D (other labels known) ceiling is never below the 5D one
    assert (ceiling["ceiling_r2_1d_median"] >= ceiling["ceiling_r2_5d_median"]).all()


def test_snr_matches_the_paper_within_5_percent(tables):
    _, snr = tables
    assert list(snr.columns) == ["mag", "snr_median", "paper_snr", "rel_delta"]
    assert (snr["rel_delta"].abs() < 0.05).all(), snr.to_string()
    assert snr["paper_snr"].tolist() == [PAPER_SNR[m] for m in snr["mag"]]
