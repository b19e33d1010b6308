"""The differentiable spectrum model: grid, profiles, physics directions, exact Jacobian."""
import numpy as np
import pytest
import torch

from conftest import REPO
from specvit.physics.fisher import jacobian
from specvit.physics.labels import LABEL_NAMES
from specvit.physics.spectrum import (
    N_PIXELS,
    ForwardParams,
    SpectrumModel,
    _pseudo_voigt,
    load_line_list,
    pfs_red_wave,
    simulate,
)

STARS = np.array([
    [3900.0, 1.3, 0.3, 0.2, 0.1],
    [4700.0, 2.6, -0.8, 0.3, -0.4],
    [5300.0, 4.4, 0.0, 0.0, 0.0],
    [5900.0, 3.5, -2.1, 0.4, 0.3],
])


@pytest.fixture(scope="module")
def model64():
    return SpectrumModel(dtype=torch.float64)


def test_wavelength_grid_is_the_pfs_red_arm():
    wave = pfs_red_wave()
    assert wave.dtype == np.float64 and wave.size == N_PIXELS == 4096
    assert wave[0] == pytest.approx(7100.2136)
    assert wave[-1] == pytest.approx(7100.2136 + 0.427246 * 4095)
    assert np.allclose(np.diff(wave), 0.427246)


def test_pseudo_voigt_is_area_normalised_with_the_right_width():
    x = torch.linspace(-400.0, 400.0, 800001, dtype=torch.float64)
    dx = float(x[1] - x[0])
    for fwhm_g, fwhm_l in [(0.9, 1e-4), (0.9, 0.3), (0.5, 2.0)]:
        phi = _pseudo_voigt(x, fwhm_g, torch.tensor(fwhm_l, dtype=torch.float64))
        # the Lorentz part has heavy tails: the area outside +-400 A is ~ fwhm_l / (pi 400)
        assert float(phi.sum() * dx) == pytest.approx(1.0, abs=2e-3)
        half = phi.max() / 2
        width = float((phi >= half).sum() * dx)
        # Olivero & Longbothum (1977) Voigt FWHM, accurate to 0.02 %
        expected = 0.5346 * fwhm_l + np.sqrt(0.2166 * fwhm_l**2 + fwhm_g**2)
        assert width == pytest.approx(expected, rel=0.02)


def test_default_dtype_float32_and_shapes():
    model = SpectrumModel()
    flux = model(torch.as_tensor(STARS, dtype=torch.float32))
    assert flux.dtype == torch.float32 and flux.shape == (len(STARS), N_PIXELS)
    single = model(torch.as_tensor(STARS[0], dtype=torch.float32))
    assert single.shape == (N_PIXELS,)
    assert torch.allclose(single, flux[0], atol=1e-6)


def test_flux_is_mean_normalised_positive_and_finite(model64):
    flux = model64(torch.as_tensor(STARS)).numpy()
    assert np.isfinite(flux).all() and (flux > 0).all()
    assert np.allclose(flux.mean(axis=1), 1.0, atol=1e-12)


def test_float32_agrees_with_float64(model64):
    f64 = model64(torch.as_tensor(STARS)).numpy()
    f32 = SpectrumModel()(torch.as_tensor(STARS, dtype=torch.float32)).numpy()
    assert np.abs(f32 - f64).max() < 1e-4


def test_custom_wavelength_grid_not_4096():
    wave = np.linspace(8400.0, 8700.0, 1000)
    flux = simulate(STARS[:2], SpectrumModel(wave=wave))
    assert flux.shape == (2, 1000) and np.isfinite(flux).all()


def _depth_near(model, labels, center, half_width=1.0):
    flux = model(torch.as_tensor(labels)[None])[0].numpy()
    sel = np.abs(model.wave - center) <= half_width
    return 1.0 - flux[sel].min()


def test_physics_directions(model64):
    base = np.array([5000.0, 2.5, 0.0, 0.0, 0.0])
    # metal-rich stars have deeper metal lines
    poor, rich = base.copy(), base.copy()
    poor[2], rich[2] = -2.0, 0.5
    assert _depth_near(model64, rich, 8688.62) > _depth_near(model64, poor, 8688.62)
    # TiO bands appear only in cool stars: flux just redward of the 7589 A head drops
    cool, warm = base.copy(), base.copy()
    cool[0], warm[0] = 3760.0, 5000.0
    inside = (model64.wave > 7592.0) & (model64.wave < 7620.0)
    before = (model64.wave > 7560.0) & (model64.wave < 7586.0)
    f_cool = model64(torch.as_tensor(cool)[None])[0].numpy()
    f_warm = model64(torch.as_tensor(warm)[None])[0].numpy()
    band = lambda f: f[inside].mean() / f[before].mean()  # noqa: E731
    assert band(f_cool) < band(f_warm) - 0.03
    # log g, as in real cool stars: the Na I 8183/8195 doublet (pressure-broadened wings) is
    # stronger in dwarfs, the Ca II triplet (ionised, ~ g^-1/3) stronger in giants
    def equivalent_width(labels, lo, hi):
        flux = model64(torch.as_tensor(labels)[None])[0].numpy()
        sel = (model64.wave > lo) & (model64.wave < hi)
        return float((1.0 - flux[sel]).sum() * 0.427246)

    giant, dwarf = np.array([4000.0, 1.0, 0.0, 0.0, 0.0]), np.array([4000.0, 5.0, 0.0, 0.0, 0.0])
    assert equivalent_width(dwarf, 8178, 8200) > equivalent_width(giant, 8178, 8200)
    assert equivalent_width(dwarf, 8180, 8181.5) > equivalent_width(giant, 8180, 8181.5)  # the blue wing
    assert equivalent_width(giant, 8535, 8550) > equivalent_width(dwarf, 8535, 8550)


def test_line_lists_are_shipped_and_sane():
    named = load_line_list("named_lines")
    forest = load_line_list("forest_lines")
    for wave in (8498.02, 8542.09, 8662.14, 8183.26, 8194.82, 7664.90, 7698.96, 8806.76, 7771.94):
        assert np.isclose(named["wavelength"], wave).any()
    assert len(forest["wavelength"]) >= 300
    assert np.all(np.diff(forest["wavelength"]) >= 0)


def test_forest_file_is_reproduced_by_its_script(tmp_path):
    import importlib.util
    import io
    from importlib import resources

    script = REPO / "tools" / "make_forest_lines.py"
    spec = importlib.util.spec_from_file_location("make_forest_lines", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = io.StringIO()
    module.main(out)
    shipped = resources.files("specvit.resources").joinpath("forest_lines.csv").read_text()
    assert out.getvalue() == shipped


@pytest.mark.parametrize("k", range(len(LABEL_NAMES)))
def test_jacobian_matches_central_finite_differences(model64, k):
    labels = torch.as_tensor(STARS)
    _, jac = jacobian(model64, labels)
    # A quick check on four stars; tests/unit/physics/test_jacobian.py checks 256 stars at three steps.
    step = {0: 0.02, 1: 1e-5, 2: 1e-5, 3: 1e-5, 4: 1e-5}[k]
    up, down = labels.clone(), labels.clone()
    up[:, k] += step
    down[:, k] -= step
    fd = (model64(up) - model64(down)) / (2 * step)
    ad = jac[..., k]
    rel = torch.linalg.vector_norm(ad - fd, dim=1) / torch.linalg.vector_norm(fd, dim=1)
    assert rel.max() < 1e-3, f"{LABEL_NAMES[k]}: relative error {rel.tolist()}"


def test_params_change_the_spectrum():
    labels = torch.as_tensor(STARS[:1], dtype=torch.float32)
    a = SpectrumModel()(labels)
    b = SpectrumModel(ForwardParams(strength_offset=0.2))(labels)
    assert not torch.allclose(a, b)
    assert SpectrumModel().describe()["forward_strength_offset"] == ForwardParams().strength_offset


def test_lsf_operator_is_the_per_pixel_convolution_and_its_own_derivative(model64):
    """The sparse LSF equals the explicit 17-tap convolution with replicate padding, its JVP (under vmap)
    applies the same operator to the tangents, and its VJP the transpose; copies of a model share it."""
    import copy

    from torch.func import jvp, vmap

    rng = np.random.default_rng(5)
    flux = torch.as_tensor(rng.uniform(0.2, 1.2, (3, N_PIXELS)))
    kernel = model64.lsf_kernel.numpy()
    h = (kernel.shape[1] - 1) // 2
    padded = np.pad(flux.numpy(), ((0, 0), (h, h)), mode="edge")
    expected = sum(padded[:, m : m + N_PIXELS] * kernel[:, m] for m in range(2 * h + 1))
    np.testing.assert_allclose(model64.convolve_lsf(flux).numpy(), expected, rtol=1e-13, atol=1e-15)
    tangents = torch.as_tensor(rng.normal(size=(4, 3, N_PIXELS)))
    _, out = vmap(lambda t: jvp(model64.convolve_lsf, (flux,), (t,)), out_dims=(None, 0))(tangents)
    for t, o in zip(tangents, out):
        np.testing.assert_allclose(o.numpy(), model64.convolve_lsf(t).numpy(), rtol=1e-13, atol=1e-15)
    x = flux.clone().requires_grad_()
    weights = torch.as_tensor(rng.normal(size=(3, N_PIXELS)))
    (model64.convolve_lsf(x) * weights).sum().backward()
    dense = np.zeros((N_PIXELS, N_PIXELS))
    for m in range(2 * h + 1):
        np.add.at(dense, (np.arange(N_PIXELS), np.clip(np.arange(N_PIXELS) + m - h, 0, N_PIXELS - 1)), kernel[:, m])
    np.testing.assert_allclose(x.grad.numpy(), weights.numpy() @ dense, rtol=1e-12, atol=1e-14)
    assert (model64.lsf_kernel.numpy() == kernel).all()  # building the operator leaves the kernel as it was
    twin = copy.deepcopy(model64)
    assert torch.equal(twin(torch.as_tensor(STARS)), model64(torch.as_tensor(STARS)))
