"""The paper's classical baseline ``template``: a maximum-likelihood fit of all five labels to each
spectrum with the forward model (``specvit.physics.spectrum.SpectrumModel``), registered as ``template``.

Nothing is learnt: ``fit`` only checks that the spectra lie on the forward model's wavelength grid.
``predict`` minimises, per spectrum, chi^2 = sum_j w_j (x_j - f_j(theta))^2 over all five labels by
batched Levenberg-Marquardt in float64:

- ``nuisances`` (a continuum degree and/or a radial velocity): the model is f(theta, v) (1 + sum_k
  c_k P_k(x)); c and v (km/s) are fitted with the labels, unbounded, from 0 (so |v| of tens of km/s).
- coordinates: u in [0, 1]^5, theta = low + u (high - low) over the label box (``LabelSpace``
  defaults). Bounds by projection: a label that sits on a bound with the gradient pushing outward
  is frozen for that step (projected Newton), the others are solved for, and the trial point is
  clamped into the box. So the estimate is the constrained ML (it can sit on the box edge at low
  SNR), not a sigmoid-reparametrised one, whose flat tails stall LM near the bounds.
- Jacobians: exact, by forward-mode autodiff (``specvit.physics.fisher.jacobian``), computed only at
  accepted points; a trial point costs one forward pass. Damping: Marquardt, lambda * diag(J^T W J),
  lambda / 3 on an accepted step, x 10 on a rejected one.
- weights: ``error`` given -> w = 1 / error^2. ``error=None`` -> IRLS: equal weights at first, then
  every ``_REFIT_EVERY`` iterations the noise model sigma_j^2 = alpha f_j + beta (the form of
  ``specvit.physics.noise.pixel_sigma``: sigma^2 = (c f + B) / c^2) is refitted per star by least squares of
  the squared residuals on the model flux, alpha, beta >= 0.
- starts: the box centre plus ``n_starts - 1`` points drawn uniformly from the inner 90 % of the
  box by ``np.random.default_rng(seed)`` - the same starts for every spectrum, so a prediction
  depends only on its spectrum, not on its row or batch. The start with the lowest chi^2 is kept
  (IRLS: lowest Gaussian negative log-likelihood sum r^2 / sigma^2 + log sigma^2 under the
  refitted noise, since chi^2 under self-estimated weights is ~P for any fit).
- stopping: per problem, when the Gauss-Newton decrement g^T H^-1 g (the chi^2 a full step would
  still gain) or the chi^2 gained by the last accepted step is below ``_TOL`` (IRLS: only after
  ``_MIN_REFITS`` noise refits), when lambda exceeds ``_LAMBDA_MAX``, or after ``max_iter`` steps.
  Finished problems leave the batch, so the cost follows the slow ones.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from specvit.models.base import Regressor, register, write_model_file
from specvit.models.checks import check_fit_inputs, check_x
from specvit.models.template_config import template_settings
from specvit.models.template_noise import noise_weights
from specvit.physics.fisher import jacobian
from specvit.physics.labels import LABEL_NAMES, LabelSpace
from specvit.physics.nuisances import RV_MAX_KMS, NuisanceSet, legendre_basis
from specvit.physics.spectrum import ForwardParams, SpectrumModel

_REFIT_EVERY = 3     # IRLS: refit (alpha, beta) every this many iterations
_MIN_REFITS = 2      # IRLS: ... and at least this many times before a problem may stop
_TOL = 1e-3          # stop when the Gauss-Newton step would gain, or the last step gained, less chi^2 than this
_LAMBDA_MAX = 1e5    # stop when the damping grows past this (no downhill step left)
_LOG_EVERY_S = 30.0  # progress line at most this often


def _projected_normal_equations(jac, w, r, u):
    """The Gauss-Newton system J^T W J du = J^T W r of one LM step with the labels on a bound that the
    gradient pushes outward held fixed: (H [m, k, k] with those rows and columns replaced by the
    identity, g [m, k, 1] zero there, diag(H) floored [m, k], the free mask as floats [m, k])."""
    jw = jac * w[..., None]
    hess = jw.transpose(1, 2) @ jac                                  # J^T W J [m, 5 + n, 5 + n]
    grad = (jw * r[..., None]).sum(1)                                # J^T W r, the downhill direction
    free = ~(((u <= 0) & (grad < 0)) | ((u >= 1) & (grad > 0)))      # labels on a bound stay there
    free[:, 5:] = True                                               # the nuisances have no bounds
    fr = free.to(torch.float64)
    d = torch.diagonal(hess, dim1=1, dim2=2)
    d = torch.maximum(d, 1e-12 * d.amax(1, keepdim=True) + torch.finfo(d.dtype).tiny)
    h_free = hess * fr[:, :, None] * fr[:, None, :] + torch.diag_embed(1 - fr)
    return h_free, (grad * fr)[..., None], d, fr


@register("template")
class TemplateFitRegressor(Regressor):
    """Per-spectrum maximum-likelihood fit of (Teff, logg, M_H, a_M, C_M) with the forward model.

    ``labels``: which of the five fitted labels ``predict`` returns. ``forward``: ``ForwardParams``
    overrides of the fitting model (to study a model mismatch). ``batch_size``: spectra per batch.
    ``nuisances``: ``{"continuum_degree": d or None, "rv": bool}`` fitted with the labels (None: none).
    """

    _JSON = "template.json"

    def __init__(self, labels=("logg",), n_starts: int = 4, max_iter: int = 30, damping: float = 1e-3,
                 batch_size: int = 256, seed: int = 0, forward: dict | None = None, nuisances: dict | None = None):
        self.labels, self._settings = template_settings(labels, n_starts, max_iter, damping, batch_size, seed,
                                                        forward, nuisances)
        (self.n_starts, self.max_iter, self.damping, self.batch_size, self.seed, self.forward,
         self.nuisances) = self._settings.values()
        self._nuisance = NuisanceSet(**self.nuisances) if self.nuisances else None
        self._params = ForwardParams(**self.forward)
        space = LabelSpace()
        self._low = torch.as_tensor(space.low, dtype=torch.float64)
        self._span = torch.as_tensor(space.high - space.low, dtype=torch.float64)
        self._model: SpectrumModel | None = None

    def settings(self) -> dict:
        return dict(self._settings)

    @property
    def model(self) -> SpectrumModel:
        """The embedded forward model (float64), built on first use."""
        if self._model is None:
            self._model = SpectrumModel(self._params, dtype=torch.float64).eval()
        return self._model

    def starts(self) -> np.ndarray:
        """Start points [n_starts, 5] in box coordinates u: the centre, then seeded uniform draws."""
        rng = np.random.default_rng(self.seed)
        return np.concatenate([np.full((1, 5), 0.5), rng.uniform(0.05, 0.95, (self.n_starts - 1, 5))])

    # ------------------------------------------------------------------ fit / predict

    def fit(self, x_train, y_train, x_val=None, y_val=None, log: Callable[[str], Any] = print,
            wave=None) -> dict:
        """Nothing to learn: check the inputs and that the spectra are on the forward model's grid
        (pixel count, and the wavelengths themselves when ``wave`` is given)."""
        x_train, _, x_val, _ = check_fit_inputs(self.labels, x_train, y_train, x_val, y_val)
        grid = self.model.wave
        on_grid = x_train.shape[1] == grid.size and (
            wave is None or (np.shape(wave) == grid.shape and np.allclose(wave, grid, rtol=0, atol=1e-6)))
        if not on_grid:
            raise ValueError(
                f"the template fit needs spectra on its embedded forward model's wavelength grid "
                f"({grid.size} pixels, {grid[0]:.2f}-{grid[-1]:.2f} A); x_train has {x_train.shape[1]} pixels"
                + ("" if wave is None else f" on {np.size(wave)} wavelengths that do not match"))
        self.n_features = int(grid.size)
        self.fit_info = {"model": self.name, "settings": self.settings(), "n_train": int(x_train.shape[0]),
                         "fit_seconds": 0.0}
        log(f"template: nothing to train; fits {LABEL_NAMES} per spectrum on the {grid.size}-pixel model grid")
        return self.fit_info

    def predict(self, x, error=None, log: Callable[[str], Any] | None = print) -> dict[str, np.ndarray]:
        """{label: float64 [N]}: the ML labels of each spectrum x [N, P]; ``error`` [N, P] the 1-sigma
        noise per pixel, or None to estimate it per star (IRLS)."""
        theta = self.fit_spectra(x, error, log)["labels"]
        return {lab: np.ascontiguousarray(theta[:, LABEL_NAMES.index(lab)]) for lab in self.labels}

    def fit_spectra(self, x, error=None, log: Callable[[str], Any] | None = None) -> dict[str, np.ndarray]:
        """The fit of every spectrum: ``labels`` [N, 5] (``LABEL_NAMES`` order); ``objective`` [N] of the
        kept start (chi^2 with ``error``, else the Gaussian negative log-likelihood under the refitted
        noise); ``start`` [N], its index; ``iterations`` [N], the LM steps it took; with nuisances,
        ``nuisances`` [N, n] (the continuum coefficients c_0 .. c_d, then the radial velocity in km/s)."""
        self._require_fitted()
        x = check_x(x, "x", n_features=self.n_features)
        if error is not None:
            error = check_x(error, "error", n_features=self.n_features)
            if error.shape != x.shape:
                raise ValueError(f"error has shape {error.shape}; x has {x.shape}")
            if not (error > 0).all():
                raise ValueError("error must be > 0 in every pixel")
        n = x.shape[0]
        out = {"labels": np.empty((n, 5)), "objective": np.empty(n), "start": np.empty(n, dtype=np.int64),
               "iterations": np.empty(n, dtype=np.int64), "nuisances": np.empty((n, self._n_nuisance))}
        starts = torch.as_tensor(self.starts())
        starts = torch.cat([starts, torch.zeros(len(starts), self._n_nuisance, dtype=starts.dtype)], dim=1)
        t0 = last = time.perf_counter()
        for i in range(0, n, self.batch_size):
            s = slice(i, min(i + self.batch_size, n))
            y = torch.as_tensor(x[s], dtype=torch.float64)
            w = None if error is None else torch.as_tensor(error[s], dtype=torch.float64) ** -2
            best = None
            for k, u0 in enumerate(starts):
                u, obj, iters = self._levenberg_marquardt(y, w, u0.expand(y.shape[0], -1).clone())
                new = (u, obj, torch.full_like(iters, k), iters)
                if best is None:
                    best = new
                else:
                    better = obj < best[1]
                    best = tuple(torch.where(better[:, None] if a.ndim == 2 else better, a, b)
                                 for a, b in zip(new, best))
            out["labels"][s] = (self._low + self._span * best[0][:, :5]).numpy()
            out["nuisances"][s] = best[0][:, 5:].numpy()
            for key, v in zip(("objective", "start", "iterations"), best[1:]):
                out[key][s] = v.numpy()
            now = time.perf_counter()
            if log is not None and (now - last > _LOG_EVERY_S or (s.stop == n and now - t0 > _LOG_EVERY_S)):
                log(f"template: {s.stop}/{n} spectra fitted, {s.stop / (now - t0):.2f} spectra/s")
                last = now
        if not self._n_nuisance:
            del out["nuisances"]
        return out

    @property
    def _n_nuisance(self) -> int:
        return 0 if self._nuisance is None else len(self._nuisance.names)

    @torch.no_grad()
    def _evaluate(self, p: torch.Tensor, with_jacobian: bool):
        """Model flux [M, P] at parameters p [M, 5 + n] (box coordinates u of the labels, then the
        nuisances), and its Jacobian d flux / d p [M, P, 5 + n] if asked."""
        theta = self._low + self._span * p[:, :5]
        ns = self._nuisance
        rv = ns is not None and ns.rv
        v = p[:, -1] if rv else None
        if not with_jacobian:
            f, jac = self.model(theta, v), None
        else:
            with torch.enable_grad():
                f, jac = jacobian(self.model, theta, rv=rv, rv_kms=v)
            f, jac = f.detach(), jac.detach()
            jac[..., :5] *= self._span
        if ns is None or ns.continuum_degree is None:
            return f, jac
        basis = torch.as_tensor(legendre_basis(self.model.wave, ns.continuum_degree), dtype=f.dtype)
        factor = 1.0 + p[:, 5 : 5 + ns.n_continuum] @ basis.T                    # [M, P]
        if jac is not None:  # labels and v scale with the factor; d / d c_k = f P_k
            jac = torch.cat([jac[..., :5] * factor[..., None], f[..., None] * basis,
                             jac[..., 5:] * factor[..., None]], dim=-1)
        return f * factor, jac

    def _levenberg_marquardt(self, y: torch.Tensor, w_fixed: torch.Tensor | None, u: torch.Tensor):
        """Projected LM from u [M, 5 + n] (the labels' box coordinates, then the nuisances) for spectra
        y [M, P]; inverse variances w_fixed [M, P] or None (IRLS). Returns (u [M, 5 + n], objective [M],
        LM steps taken [M])."""
        irls = w_fixed is None
        m = y.shape[0]
        out_u, out_obj, out_it = u.clone(), torch.empty(m, dtype=torch.float64), torch.empty(m, dtype=torch.long)
        idx = torch.arange(m)  # rows of the problems still running
        f, jac = self._evaluate(u, True)
        r = y - f
        w = torch.ones_like(y) if irls else w_fixed
        chi2 = (w * r * r).sum(1)
        lam = torch.full((m,), self.damping, dtype=torch.float64)
        refits = torch.zeros(m, dtype=torch.long)
        stalled = torch.zeros(m, dtype=torch.bool)  # the last step gained less than _TOL: at a kink or the minimum
        for it in range(self.max_iter + 1):
            h_free, g_free, d, fr = _projected_normal_equations(jac, w, r, u)
            # Gauss-Newton decrement g^T H^-1 g: the chi^2 still to gain; stop when it is negligible.
            decrement = (g_free * torch.linalg.solve(h_free + torch.diag_embed(1e-12 * d), g_free)).sum((1, 2))
            done = (decrement < _TOL) | (lam > _LAMBDA_MAX)
            if irls:
                done &= refits >= _MIN_REFITS
            done |= stalled
            if it == self.max_iter:
                done[:] = True
            if done.any():
                out_u[idx[done]] = u[done]
                out_obj[idx[done]] = self._objective(r[done], f[done], chi2[done], irls)
                out_it[idx[done]] = it
                keep = ~done
                idx, u, f, jac, r, y, w, chi2, lam, refits, stalled, h_free, g_free, d, fr = (
                    t[keep] for t in (idx, u, f, jac, r, y, w, chi2, lam, refits, stalled, h_free, g_free, d, fr))
                if idx.numel() == 0:
                    break
            step = torch.linalg.solve(h_free + torch.diag_embed(lam[:, None] * d * fr), g_free)[..., 0]
            u_try = self._project(u + step)
            f_try, _ = self._evaluate(u_try, False)
            r_try = y - f_try
            chi2_try = (w * r_try * r_try).sum(1)
            ok = chi2_try < chi2
            stalled = ok & (chi2 - chi2_try < _TOL)
            u[ok], f[ok], r[ok], chi2[ok] = u_try[ok], f_try[ok], r_try[ok], chi2_try[ok]
            lam = torch.where(ok, lam / 3, lam * 10)
            if irls and (it + 1) % _REFIT_EVERY == 0:
                w = noise_weights(r, f)
                chi2 = (w * r * r).sum(1)
                refits += 1
            if irls:
                stalled &= refits >= _MIN_REFITS
            need = ok & ~stalled  # a new point the fit goes on from: its Jacobian
            if need.any():
                jac[need] = self._evaluate(u[need], True)[1]
        return out_u, out_obj, out_it

    def _project(self, p: torch.Tensor) -> torch.Tensor:
        """Labels clamped into the box; a radial velocity within the forward model's range."""
        p = torch.cat([p[:, :5].clamp(0.0, 1.0), p[:, 5:]], dim=1)
        if self._nuisance is not None and self._nuisance.rv:
            p[:, -1] = p[:, -1].clamp(-0.99 * RV_MAX_KMS, 0.99 * RV_MAX_KMS)
        return p

    @staticmethod
    def _objective(r, f, chi2, irls: bool) -> torch.Tensor:
        if not irls:
            return chi2
        w = noise_weights(r, f)
        return (w * r * r - torch.log(w)).sum(1)

    # ------------------------------------------------------------------ files

    def _write_payload(self, directory: Path) -> dict[str, dict]:
        text = json.dumps({"settings": self.settings(), "label_names": list(LABEL_NAMES),
                           "box_low": self._low.tolist(), "box_high": (self._low + self._span).tolist()}, indent=2)
        return {self._JSON: write_model_file(directory / self._JSON, lambda p: p.write_text(text + "\n"))}

    def _read_payload(self, directory: Path, meta: dict) -> None:
        path = directory / self._JSON
        if self._JSON not in meta["files"]:
            raise ValueError(f"{directory / 'model.json'}: does not list {self._JSON}")
        try:
            payload = json.loads(path.read_text())
            settings = payload["settings"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}: unreadable template payload ({e})") from e
        if settings != json.loads(json.dumps(self.settings())):
            raise ValueError(f"{path}: settings {settings} differ from model.json's {self.settings()}")
