"""Attribution: integrated gradients (completeness, an analytic case), attention rollout, the
token -> pixel map and the line statistics, and one run end to end on a small trained ViT."""
import numpy as np
import pytest
import torch

from specvit.data.contract import read_arrays, read_labels
from specvit.data.simulate import generate_split
from specvit.models.vit import ViTConfig, build_vit
from specvit.physics.spectrum import pfs_red_wave
from specvit.studies.attribution import (
    AttributionSettings,
    attention_rollout,
    attribute_run,
    baseline_spectra,
    integrated_gradients,
    label_output,
    pooled_token_share,
    tokens_to_pixels,
)
from specvit.studies.attribution_lines import (
    ALL_LINES,
    WHOLE_SPECTRUM,
    StarGroup,
    dflux_dlogg,
    feature_masks,
    line_statistics,
    rank_correlation,
    star_groups,
)
from specvit.training.vit_regressor import VitRegressor


def test_integrated_gradients_exact_for_a_quadratic():
    """f(x) = sum w x^2: IG_i = w_i (x_i^2 - b_i^2) exactly (Gauss-Legendre integrates the linear
    gradient exactly with any number of nodes)."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(7, generator=g)
    x, b = torch.randn(3, 7, generator=g), torch.randn(3, 7, generator=g)
    ig, err = integrated_gradients(lambda z: (w * z**2).sum(dim=1), x, b, steps=2)
    torch.testing.assert_close(ig, w * (x**2 - b**2), rtol=1e-5, atol=1e-5)
    assert err.abs().max() < 1e-5


def test_integrated_gradients_complete_on_a_small_vit():
    torch.manual_seed(1)
    cfg = ViTConfig(n_pixels=200, patch=20, dim=16, depth=2, heads=2, mlp_dim=32)
    net = build_vit(cfg).eval()
    with torch.no_grad():  # larger weights than the init, so the network is clearly nonlinear
        for p in net.parameters():
            if p.ndim >= 2:
                p.normal_(0.0, 1.0 / p.shape[-1] ** 0.5)
    def f(z):
        return net(z)[:, 0]

    x = 1.0 + 0.3 * torch.randn(5, 200)
    b = torch.ones_like(x)
    ig, err = integrated_gradients(f, x, b, steps=32)
    gap = (f(x) - f(b)).detach()
    assert gap.abs().max() > 1e-2                       # a real test: the output does change
    assert err.abs().max() < 1e-3 * gap.abs().max()
    _, coarse = integrated_gradients(f, x, b, steps=1)  # one node is not enough: the error is visible
    assert coarse.abs().max() > 10 * err.abs().max()


def test_rollout_rows_sum_to_one_and_known_cases():
    g = torch.Generator().manual_seed(2)
    maps = [torch.softmax(torch.randn(4, 3, 9, 9, generator=g), dim=-1) for _ in range(3)]
    r = attention_rollout(maps)
    torch.testing.assert_close(r.sum(dim=-1), torch.ones(4, 9, dtype=r.dtype))
    # one layer of uniform attention: 0.5 / S + 0.5 I
    uniform = [torch.full((1, 2, 5, 5), 0.2)]
    torch.testing.assert_close(attention_rollout(uniform)[0], 0.1 + 0.5 * torch.eye(5, dtype=torch.float64))
    # two layers multiply (last layer first)
    a1, a2 = [0.5 * m.double().mean(1) + 0.5 * torch.eye(9, dtype=torch.float64) for m in maps[:2]]
    torch.testing.assert_close(attention_rollout(maps[:2]), a2 @ a1)
    share = pooled_token_share(r, "cls")
    assert share.shape == (4, 8) and torch.all(share.sum(1) < 1)
    torch.testing.assert_close(pooled_token_share(r, "mean").sum(1), torch.ones(4, dtype=r.dtype))


def test_tokens_to_pixels_spreads_each_token_over_its_window():
    cfg = ViTConfig(n_pixels=100, patch=16, stride=8, dim=8, depth=1, heads=1, mlp_dim=8)
    scores = np.arange(1.0, cfg.n_tokens + 1)[None, :]
    px = tokens_to_pixels(scores, cfg)
    assert px.shape == (1, 100)
    # pixel 10 lies in tokens 0 (0..15) and 1 (8..23)
    assert px[0, 10] == pytest.approx((1.0 + 2.0) / 16)
    full = tokens_to_pixels(scores, cfg.replace(n_pixels=cfg.padded_length))
    assert full.sum() == pytest.approx(scores.sum())


def test_dflux_dlogg_is_the_logg_column_of_the_fisher_jacobian():
    from specvit.physics.fisher import jacobian
    from specvit.physics.spectrum import SpectrumModel

    labels = np.array([[4200.0, 1.8, -0.5, 0.2, 0.1], [5600.0, 4.4, 0.2, 0.0, -0.3]])
    _, jac = jacobian(SpectrumModel().double(), torch.as_tensor(labels))
    np.testing.assert_allclose(dflux_dlogg(labels, pfs_red_wave()), jac[..., 1].abs().numpy(), rtol=1e-10)


def test_line_statistics_chance_level_and_concentration():
    wave = pfs_red_wave()
    masks = feature_masks(wave, 10.0)
    assert {"Ca II", "Na I", "K I", "Mg I", "O I", "Pa", "TiO", "CN", ALL_LINES} <= set(masks)
    ca = masks["Ca II"]
    assert ca.sum() == pytest.approx(3 * 2 * 10 / 0.427246, abs=6)   # three lines, +-10 A
    uniform = line_statistics("g", "m", np.ones(wave.size), None, masks, 10.0, 5)
    for row in uniform:
        assert row["attribution_fraction"] == pytest.approx(row["pixel_fraction"])
        assert np.isnan(row["corr_with_dflux_dlogg"])
    on_ca = line_statistics("g", "m", ca.astype(float), ca.astype(float) + 0.1 * wave / wave.max(), masks, 10.0, 5)
    by = {r["feature"]: r for r in on_ca}
    assert by["Ca II"]["attribution_fraction"] == pytest.approx(1.0)
    assert by["Na I"]["attribution_fraction"] == 0.0
    assert by[WHOLE_SPECTRUM]["corr_with_dflux_dlogg"] > 0.3
    assert rank_correlation(np.arange(10.0), np.arange(10.0) ** 3) == pytest.approx(1.0)
    # ties take their average rank: Spearman of [0, 0, 1, 1] with [1, 2, 3, 4] is Pearson of
    # [1.5, 1.5, 3.5, 3.5] with [1, 2, 3, 4]
    expect = np.corrcoef([1.5, 1.5, 3.5, 3.5], [1, 2, 3, 4])[0, 1]
    assert rank_correlation(np.array([0.0, 0, 1, 1]), np.array([1.0, 2, 3, 4])) == pytest.approx(expect)


def test_bad_config_and_baseline():
    with pytest.raises(ValueError, match=r"attribution.groups\[0\].logg' \(giants\) needs lo < hi"):
        star_groups([{"name": "giants", "teff": [3750, 6000], "logg": [3, 1]}])
    with pytest.raises(ValueError, match="baseline 'noise' is not one of"):
        baseline_spectra("noise", np.ones((2, 3)))
    group = StarGroup("x", (4000, 5000), (1, 3))
    assert group.select(np.array([4500, 5500]), np.array([2, 2])).tolist() == [True, False]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny ViT trained for two epochs on 256 synthetic stars, saved like a run's model."""
    d = tmp_path_factory.mktemp("attr")
    for split, n, seed in (("train", 256, 0), ("val", 64, 1), ("test", 48, 2)):
        generate_split(d / f"{split}.h5", n=n, seed=seed, chunk_size=256, split_name=split, progress=False)
    flux, error = read_arrays(d / "train.h5")
    vflux, verror = read_arrays(d / "val.h5")
    reg = VitRegressor(vit=dict(patch=64, dim=16, depth=2, heads=2, mlp_dim=32),
                       train=dict(epochs=2, batch_size=64, lr=1e-3))
    reg.fit(flux, {"logg": read_labels(d / "train.h5")["logg"]}, vflux + verror * 0,
            {"logg": read_labels(d / "val.h5")["logg"]}, error_train=error, wave=pfs_red_wave(), log=lambda m: None)
    reg.save(d / "model")
    return d, reg


def test_attribute_run_end_to_end(trained):
    d, reg = trained
    groups = star_groups([{"name": "giants", "teff": [3750, 6000], "logg": [1, 3]},
                          {"name": "dwarfs", "teff": [3750, 6000], "logg": [3, 5.01]}])
    settings = AttributionSettings(n_stars=40, mag=20.0, groups=tuple(groups), steps=16)
    table, arrays = attribute_run(d / "model", d / "test.h5", settings, noise_level=1.0, seed=7, log=lambda m: None)
    assert list(arrays["group"]) == ["all", "giants", "dwarfs"]
    assert arrays["n_stars"][0] == 40 and arrays["n_stars"][1] + arrays["n_stars"][2] == 40
    assert np.abs(arrays["completeness_error"]).max() < 1e-2 * np.abs(arrays["gap"]).max()
    assert set(table["method"]) == {"integrated_gradients", "attention_rollout"}
    assert table["attribution_fraction"].between(0, 1).all()
    ig_rows = table[table["method"] == "integrated_gradients"]
    assert ig_rows["corr_with_dflux_dlogg"].notna().all()  # rollout is constant across a token: may be NaN
    assert arrays["cls_attention"].shape == (3, 2, 2, reg.model.cfg.n_tokens)
    # IG of the 'all' group is the mean over the stars: recompute one star's sum independently
    f = label_output(reg)
    assert np.all(np.isfinite(arrays["dflux"])) and arrays["dflux"].shape == arrays["ig_abs"].shape
    x = torch.ones(1, 4096)
    with torch.no_grad():  # the differentiable log g output is the model's prediction in dex
            assert float(f(x)) == pytest.approx(float(reg.predict(np.ones((1, 4096), np.float32))["logg"][0]), abs=1e-4)


def test_attribute_run_refuses_a_non_vit_model(trained, tmp_path):
    from specvit.models.ridge import RidgeRegressor

    d, _ = trained
    flux, _ = read_arrays(d / "train.h5")
    ridge = RidgeRegressor()
    ridge.fit(flux[:32], {"logg": read_labels(d / "train.h5")["logg"][:32]})
    ridge.save(tmp_path / "ridge")
    with pytest.raises(ValueError, match="attribution needs a ViT run, got a 'ridge' model"):
        attribute_run(tmp_path / "ridge", d / "test.h5", AttributionSettings(n_stars=10, mag=20.0), noise_level=1.0,
                      seed=0)
