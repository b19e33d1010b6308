"""The mmse_sim ceiling: its limit on the Monte Carlo error (``check_mc_error``) on a table and on a
real (tiny) posterior simulation, and the rows of a nuisance set beside the clean ones."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from specvit.data.writer import write_split
from specvit.evaluation.ceiling_sim import SimSettings, check_mc_error, simulated_ceiling
from specvit.physics.labels import LABEL_NAMES, LabelSpace
from specvit.physics.nuisances import NuisanceSet
from specvit.physics.posterior import PosteriorSampling
from specvit.physics.spectrum import SpectrumModel

torch.set_num_threads(1)


def _table(errors):
    return pd.DataFrame({"mag": [21.5, 22.0, 22.5][: len(errors)], "dims": "5d", "r2_mc_error": errors})


def test_errors_within_the_limit_pass():
    check_mc_error(_table([0.002, 0.01]), 0.01, "test.h5")
    check_mc_error(_table([0.5, np.nan]), None, "test.h5")  # None: no limit


def test_an_error_above_the_limit_names_the_file_the_magnitudes_and_the_keys():
    with pytest.raises(ValueError) as err:
        check_mc_error(_table([0.004, 0.02, np.nan]), 0.01, "results/data/test.h5")
    msg = str(err.value)
    assert msg.startswith("results/data/test.h5: ")
    assert "5d at mag 22: 0.02" in msg and "5d at mag 22.5: nan" in msg and "mag 21.5" not in msg
    assert "ceiling.mmse_sim.max_mc_error = 0.01" in msg and "n_star and n_prior" in msg


def _test_file(tmp_path, model, n=3):
    labels = LabelSpace().sample(n, np.random.default_rng(0))
    flux = np.ones((n, model.wave.size), np.float32)  # the simulation reads only the labels
    path = tmp_path / "test.h5"
    write_split(path, model.wave, flux, 0.1 * flux, {x: labels[:, i] for i, x in enumerate(LABEL_NAMES)},
                {"source": "synthetic"})
    return path


def test_a_simulation_above_the_limit_fails(tmp_path):
    model = SpectrumModel()
    path = _test_file(tmp_path, model)
    sampling = PosteriorSampling(n_prior=64, n_star=16, n_stages=1, extra_stages=0)
    settings = SimSettings(n_stars=3, mags=(22.0,), sampling=sampling, n_boot=0, max_mc_error=None)
    table, per_star = simulated_ceiling(path, settings, model=model)
    error = float(table["r2_mc_error"].iloc[0])
    assert error > 0 and len(per_star) == 3
    with pytest.raises(ValueError, match=r"ceiling\.mmse_sim\.max_mc_error = .* \(5d at mag 22: "):
        simulated_ceiling(path, replace(settings, max_mc_error=error / 2), model=model)


def test_a_nuisance_set_gets_rows_of_its_own_on_the_same_stars(tmp_path):
    """The clean rows do not change when a nuisance set is simulated too (same seeds); the set's rows name
    its dims, and a free continuum and radial velocity leave the posterior of log g wider."""
    model = SpectrumModel()
    path = _test_file(tmp_path, model, n=4)
    sampling = PosteriorSampling(n_prior=128, n_star=32, n_stages=2, extra_stages=0)
    settings = SimSettings(n_stars=4, mags=(20.0,), sampling=sampling, n_boot=0, max_mc_error=None)
    clean, clean_stars = simulated_ceiling(path, settings, model=SpectrumModel())
    both, stars = simulated_ceiling(path, replace(settings, nuisances=(NuisanceSet(2, 0.05, True, 20.0),)),
                                    model=model)
    assert list(both["dims"]) == ["5d", "5d+cont2+rv"] and list(stars["dims"].unique()) == ["5d", "5d+cont2+rv"]
    pd.testing.assert_frame_equal(both[both["dims"] == "5d"], clean)
    pd.testing.assert_frame_equal(stars[stars["dims"] == "5d"], clean_stars)
    wide = stars.groupby("dims")["post_sd"].mean()
    assert wide["5d+cont2+rv"] > wide["5d"]
    crlb = stars.groupby("dims")["crlb"].mean()
    assert crlb["5d+cont2+rv"] > crlb["5d"]  # the same stars, more unknowns
