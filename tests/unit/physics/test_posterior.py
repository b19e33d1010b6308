"""The importance-sampling posterior mean (mmse_sim) against closed forms and brute-force integration."""
import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp

from specvit.physics.bayes import posterior_mean
from specvit.physics.importance import (
    BoxPrior,
    draw_student_t,
    importance_summary,
    log_likelihood,
    log_likelihood_continuum,
    mmse_r2,
    student_t_logpdf,
)
from specvit.physics.labels import LabelPrior
from specvit.physics.noise import pixel_sigma
from specvit.physics.observations import ContinuumError, WithRadialVelocity, observe
from specvit.physics.posterior import PosteriorSampling, allocate, posterior_means

P = 64
SAMPLING = PosteriorSampling(n_prior=1024, n_star=256, n_stages=2, batch_size=128)


class LinearModel(torch.nn.Module):
    """flux = 1 + theta @ A^T (64 pixels): a linear-Gaussian model, exact for the Fisher approximation."""

    def __init__(self, a):
        super().__init__()
        self.register_buffer("a", torch.as_tensor(a, dtype=torch.float64))

    def forward(self, theta):
        return 1.0 + theta @ self.a.T


def separable_model():
    """Two labels acting on disjoint pixels: J^T W J is diagonal whatever the noise, so the
    posterior under a box prior is a product of truncated normals."""
    a = np.zeros((P, 2))
    a[: P // 2, 0] = np.linspace(0.02, 0.08, P // 2)
    a[P // 2 :, 1] = np.linspace(0.05, 0.01, P // 2)
    return LinearModel(a)


def test_posterior_mean_of_a_separable_linear_model_is_the_truncated_normal_mean():
    model = separable_model()
    prior = BoxPrior((LabelPrior(0.0, 1.0), LabelPrior(-1.0, 2.0)))
    truth = np.array([[0.5, 0.0], [0.05, 1.9], [0.97, -0.8], [0.3, 0.5]])
    mags, seeds = [18.0, 22.0], [11, 12, 13, 14]  # narrow and box-wide posteriors
    out = posterior_means(model, truth, mags, prior=prior, noise_seeds=seeds, sampling=SAMPLING, index=0)
    obs = observe(model, prior.to_u(truth), prior, mags, noise_level=1.0, noise_seeds=seeds)
    for m, mag in enumerate(mags):  # the observation: the noise model's sigma at each magnitude, treated as known
        assert obs.w[:, m] == pytest.approx(pixel_sigma(obs.flux0, mag) ** -2, rel=1e-12)
    z = (obs.y - obs.flux0[:, None]) * np.sqrt(obs.w)
    assert abs(z.mean()) < 0.1 and abs(z.std() - 1) < 0.1  # 512 standard normal draws
    a = model.a.numpy()[:, 0]
    for m in range(len(mags)):
        w = obs.w[:, m]
        precision = (w * a * a).sum(1)
        t = truth[:, 0] + (w * a * (obs.y[:, m] - obs.flux0)).sum(1) / precision  # the least-squares fit
        exact = posterior_mean(t, 1.0 / precision, prior.priors[0])
        mc_sd = np.sqrt(out["mc_var"][m])
        assert np.all(np.abs(out["mean"][m] - exact) < 4 * mc_sd + 1e-4), (m, out["mean"][m], exact, mc_sd)
        assert np.all(out["ess"][m] > 50)
    # at mag 22 the likelihood is about as wide as the box: the posterior mean is pulled inside it
    assert out["sd"][1].min() > 3 * out["sd"][0].max()
    assert out["truth"] == pytest.approx(truth[:, 0])


def grid_posterior_mean(model, prior, y, w, index, n=401):
    """E[theta_index | y] by brute force on an n x n grid of the (2D) prior box."""
    axes = [np.linspace(p.low, p.high, n) for p in prior.priors]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 2)
    flux = model(torch.as_tensor(grid)).numpy()
    log_post = log_likelihood((y * w)[None], w[None], flux)[0] + prior.log_density_u(prior.to_u(grid))
    wn = np.exp(log_post - logsumexp(log_post))
    return float(wn @ grid[:, index])


def test_posterior_mean_with_correlated_labels_and_a_normal_prior_against_grid_integration():
    rng = np.random.default_rng(3)
    a = 0.04 * rng.normal(size=(P, 2))
    a[:, 1] = 0.8 * a[:, 0] + 0.3 * a[:, 1]  # strongly degenerate labels
    model = LinearModel(a)
    prior = BoxPrior((LabelPrior(0.0, 1.0), LabelPrior(-1.0, 1.0, "normal", mean=0.3, std=0.4)))
    truth = np.array([[0.2, 0.1], [0.8, -0.6], [0.5, 0.9]])
    mags, seeds = [19.0, 21.0], [5, 6, 7]
    out = posterior_means(model, truth, mags, prior=prior, noise_seeds=seeds, sampling=SAMPLING, index=1)
    obs = observe(model, prior.to_u(truth), prior, mags, noise_level=1.0, noise_seeds=seeds)
    for m in range(len(mags)):
        for i in range(len(truth)):
            exact = grid_posterior_mean(model, prior, obs.y[i, m], obs.w[i, m], index=1)
            assert abs(out["mean"][m, i] - exact) < 4 * np.sqrt(out["mc_var"][m, i]) + 2e-3, (m, i)


def test_continuum_marginal_likelihood_is_the_dense_gaussian_up_to_a_constant():
    """y = f (1 + B c) + noise, c ~ N(0, rms^2 I): y ~ N(f, diag(sigma^2) + rms^2 (f B)(f B)^T). The closed
    form differs from that density by a constant per observation, the same for every model flux."""
    rng = np.random.default_rng(0)
    p, k, r, s, rms = 40, 3, 3, 5, 0.05
    basis = np.polynomial.legendre.legvander(np.linspace(-1, 1, p), k - 1)
    flux = 1 + 0.3 * rng.standard_normal((s, p))
    sigma = 0.05 + 0.1 * rng.uniform(size=(r, p))
    y = flux[0] * (1 + basis @ (rms * rng.standard_normal(k))) + sigma * rng.standard_normal((r, p))
    got = log_likelihood_continuum(y, sigma**-2, flux, basis, rms)
    fb = flux[:, :, None] * basis
    dense = np.array([[stats.multivariate_normal(flux[j], np.diag(sigma[i] ** 2) + rms**2 * fb[j] @ fb[j].T)
                       .logpdf(y[i]) for j in range(s)] for i in range(r)])
    diff = got - dense
    assert np.ptp(diff, axis=1) == pytest.approx(0.0, abs=1e-8)


def grid_posterior_mean_with_continuum(model, prior, y, w, basis, rms, index, n=121, n_c=61):
    """E[theta_index | y] by brute force over the 2D prior box and a flux scale c ~ N(0, rms^2)
    (the plain Gaussian likelihood of f (1 + c) on a grid of c, not the closed form)."""
    axes = [np.linspace(p.low, p.high, n) for p in prior.priors]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 2)
    flux = model(torch.as_tensor(grid)).numpy()
    log_prior = prior.log_density_u(prior.to_u(grid))
    cs = np.linspace(-5 * rms, 5 * rms, n_c)
    log_post = np.stack([log_likelihood((y * w)[None], w[None], flux * (1 + c * basis[:, 0]))[0]
                         - 0.5 * (c / rms) ** 2 + log_prior for c in cs])
    wn = np.exp(log_post - logsumexp(log_post)).sum(0)
    return float(wn @ grid[:, index])


def test_posterior_mean_with_a_continuum_error_against_grid_integration():
    """The flux scale, integrated out in closed form, against a 3D grid over the labels and the scale;
    the observations carry each star's true scale."""
    rng = np.random.default_rng(3)
    a = 0.04 * rng.normal(size=(P, 2))
    a[:, 1] = 0.8 * a[:, 0] + 0.3 * a[:, 1]
    model = LinearModel(a)
    prior = BoxPrior((LabelPrior(0.0, 1.0), LabelPrior(-1.0, 1.0)))
    truth = np.array([[0.2, 0.1], [0.8, -0.6], [0.5, 0.9]])
    basis, rms = np.ones((P, 1)), 0.05
    continuum = ContinuumError(basis, rms, np.array([[0.06], [-0.03], [0.0]]))
    mags, seeds = [19.0, 21.0], [5, 6, 7]
    out = posterior_means(model, truth, mags, prior=prior, noise_seeds=seeds, sampling=SAMPLING, index=1,
                          continuum=continuum)
    obs = observe(model, prior.to_u(truth), prior, mags, noise_level=1.0, noise_seeds=seeds, continuum=continuum)
    clean = model(torch.as_tensor(truth)).numpy()
    assert obs.flux0 == pytest.approx(clean * (1 + continuum.coeffs), rel=1e-12)
    for m in range(len(mags)):
        for i in range(len(truth)):
            exact = grid_posterior_mean_with_continuum(model, prior, obs.y[i, m], obs.w[i, m], basis, rms, index=1)
            assert abs(out["mean"][m, i] - exact) < 4 * np.sqrt(out["mc_var"][m, i]) + 2e-3, (m, i)


def test_radial_velocity_is_one_more_parameter_of_the_wrapped_model():
    class Shifted(torch.nn.Module):
        def forward(self, labels, rv_kms):
            return labels.sum(-1, keepdim=True) + rv_kms[:, None] * torch.arange(3.0, dtype=labels.dtype)

    params = torch.tensor([[1.0, 2.0, 0.5], [0.0, 1.0, -2.0]])
    expected = torch.tensor([[3.0, 3.5, 4.0], [1.0, -1.0, -3.0]])
    assert torch.equal(WithRadialVelocity(Shifted())(params), expected)


def test_monte_carlo_variance_matches_the_spread_of_reruns():
    model = separable_model()
    prior = BoxPrior((LabelPrior(0.0, 1.0), LabelPrior(-1.0, 2.0)))
    truth = np.array([[0.4, 0.7]])
    small = PosteriorSampling(n_prior=256, n_star=64, n_stages=2, batch_size=128)
    means, mc_var = [], []
    for seed in range(40):  # the same observation, independent samples
        sampling = PosteriorSampling(**{**small.__dict__, "seed": seed})
        out = posterior_means(model, truth, [21.0], prior=prior, noise_seeds=[9], sampling=sampling, index=0)
        means.append(out["mean"][0, 0]), mc_var.append(out["mc_var"][0, 0])
    ratio = np.std(means, ddof=1) / np.sqrt(np.mean(mc_var))
    assert 0.7 < ratio < 1.4, ratio  # 40 reruns pin the sd down to about +-11 %


def test_importance_summary_bookkeeping():
    x = np.array([0.0, 1.0, 2.0, 3.0])
    equal = importance_summary(np.zeros(4), x)
    assert equal["mean"] == pytest.approx(1.5)
    assert equal["ess"] == pytest.approx(4.0)
    assert equal["sd"] == pytest.approx(np.std(x))
    assert equal["mc_var"] == pytest.approx(np.var(x) / 4)  # the variance of a plain mean of 4 draws
    one = importance_summary(np.array([0.0, -np.inf, -np.inf, -np.inf]), x)
    assert one["ess"] == pytest.approx(1.0) and one["mean"] == 0.0 and one["mc_var"] == 0.0
    skew = importance_summary(np.array([[0.0, np.log(3.0), -np.inf, -np.inf]]), x)  # broadcasting over rows
    assert skew["mean"] == pytest.approx([0.75]) and skew["ess"] == pytest.approx([16 / 10])


def test_mmse_r2_removes_the_sampling_noise_and_propagates_it():
    truth = np.array([1.0, 2.0, 3.0, 4.0])
    mean = np.array([1.5, 2.0, 2.0, 4.5])
    mc_var = np.array([0.01, 0.04, 0.0, 0.09])
    r2, err = mmse_r2(truth, mean, mc_var, var=2.0)
    assert r2 == pytest.approx(1 - np.mean((truth - mean) ** 2 - mc_var) / 2.0)
    assert err == pytest.approx(np.sqrt(4 * (0.25 * 0.01 + 0 + 0 + 0.25 * 0.09)) / (4 * 2.0))


def test_student_t_density_and_draws_against_scipy():
    rng = np.random.default_rng(1)
    centre = np.array([[0.2, -0.1], [1.0, 0.5]])
    chol = np.array([[[0.3, 0.0], [0.1, 0.2]], [[1.0, 0.0], [-0.5, 0.4]]])
    x = rng.normal(size=(7, 2))
    ours = student_t_logpdf(x, centre, chol, dof=4.0)
    for c in range(2):
        ref = stats.multivariate_t(centre[c], chol[c] @ chol[c].T, df=4.0).logpdf(x)
        assert ours[c] == pytest.approx(ref, rel=1e-10)
    draws = draw_student_t(rng, centre, chol, [0, 200_000], dof=5.0)
    assert draws.shape == (200_000, 2)
    assert np.cov(draws.T) == pytest.approx(5.0 / 3.0 * chol[1] @ chol[1].T, abs=0.03)


def test_box_prior_density_is_normalised_and_zero_outside():
    prior = BoxPrior((LabelPrior(3750.0, 6000.0), LabelPrior(1.0, 5.0, "normal", mean=5.5, std=1.0)))
    u = np.linspace(0, 1, 20001)
    grid = np.stack([np.full_like(u, 0.5), u], axis=1)
    density = np.exp(prior.log_density_u(grid))
    assert np.trapezoid(density, u) == pytest.approx(1.0, rel=1e-6)  # the mean lies above the box: the tail case
    ref = stats.truncnorm(-4.5, -0.5, loc=5.5, scale=1.0).logpdf(1.0 + 4.0 * u[1:-1]) + np.log(4.0)
    assert prior.log_density_u(grid[1:-1]) == pytest.approx(ref, rel=1e-9)
    assert np.isneginf(prior.log_density_u(np.array([[0.5, 1.01], [-0.01, 0.5]]))).all()


def test_bad_sampling_settings_are_refused():
    with pytest.raises(ValueError, match="n_prior >= 1"):
        PosteriorSampling(n_prior=0)
    with pytest.raises(ValueError, match="n_stages >= 1"):
        PosteriorSampling(n_stages=0)


def test_draws_go_to_the_magnitudes_with_the_smallest_effective_sample_size():
    assert allocate(10, np.zeros(3), np.ones(3, bool)) == [4, 3, 3]  # before any draw: an even split
    assert allocate(12, np.array([10.0, 30.0, 60.0]), np.ones(3, bool)) == [8, 3, 1]  # ~ 1/ESS
    assert allocate(9, np.array([10.0, 30.0, 60.0]), np.array([False, True, True])) == [0, 6, 3]
    assert sum(allocate(128, np.array([3.0, 500.0, 7.0, 90.0]), np.ones(4, bool))) == 128
