"""The mmse_sim ceiling's limit on its Monte Carlo error (``check_mc_error``): on a table, and on a
real (tiny) posterior simulation whose error is above the limit."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from specvit.data.writer import write_split
from specvit.evaluation.ceiling_sim import SimSettings, check_mc_error, simulated_ceiling
from specvit.physics.labels import LABEL_NAMES, LabelSpace
from specvit.physics.posterior import PosteriorSampling
from specvit.physics.spectrum import SpectrumModel

torch.set_num_threads(1)


def _table(errors):
    return pd.DataFrame({"mag": [21.5, 22.0, 22.5][: len(errors)], "r2_mc_error": errors})


def test_errors_within_the_limit_pass():
    check_mc_error(_table([0.002, 0.01]), 0.01, "test.h5")
    check_mc_error(_table([0.5, np.nan]), None, "test.h5")  # None: no limit


def test_an_error_above_the_limit_names_the_file_the_magnitudes_and_the_keys():
    with pytest.raises(ValueError) as err:
        check_mc_error(_table([0.004, 0.02, np.nan]), 0.01, "results/data/test.h5")
    msg = str(err.value)
    assert msg.startswith("results/data/test.h5: ")
    assert "mag 22: 0.02" in msg and "mag 22.5: nan" in msg and "mag 21.5" not in msg
    assert "ceiling.mmse_sim.max_mc_error = 0.01" in msg and "n_star and n_prior" in msg


def test_a_simulation_above_the_limit_fails(tmp_path):
    model = SpectrumModel()
    labels = LabelSpace().sample(3, np.random.default_rng(0))
    flux = np.ones((3, model.wave.size), np.float32)  # the simulation reads only the labels
    path = tmp_path / "test.h5"
    write_split(path, model.wave, flux, 0.1 * flux, {x: labels[:, i] for i, x in enumerate(LABEL_NAMES)},
                {"source": "synthetic"})
    sampling = PosteriorSampling(n_prior=64, n_star=16, n_stages=1, extra_stages=0)
    settings = SimSettings(n_stars=3, mags=(22.0,), sampling=sampling, n_boot=0, max_mc_error=None)
    table, per_star = simulated_ceiling(path, settings, model=model)
    error = float(table["r2_mc_error"].iloc[0])
    assert error > 0 and len(per_star) == 3
    with pytest.raises(ValueError, match=r"ceiling\.mmse_sim\.max_mc_error = .* \(mag 22: "):
        simulated_ceiling(path, replace(settings, max_mc_error=error / 2), model=model)
