"""The instrument's line-spread function as a sparse linear operator of the spectrum.

The LSF is a per-pixel Gaussian (its width follows lambda / R), applied after the exponential of the
optical depth. Applying 2H+1 shifted copies of the spectrum is cheap in a forward pass but costs ~10x
that under torch.func's forward-mode autodiff and vmap (the Fisher Jacobian); one sparse matrix
product with hand-written JVP, VJP and vmap rules (a linear map is its own derivative) costs a
fraction of the forward pass in all three.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from specvit.physics.grid import RESOLUTION

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def lsf_kernel(wave: np.ndarray, pre_fwhm: float, resolution: float = RESOLUTION, half_width: int = 8) -> np.ndarray:
    """Per-pixel Gaussian weights [P, 2H+1] of the LSF applied after the exponential: the part the
    line profiles' pre-broadening leaves, FWHM^2 = (lambda / R)^2 - pre^2."""
    step = np.gradient(wave)
    fwhm = np.sqrt(np.clip((wave / resolution) ** 2 - pre_fwhm**2, 1e-6, None))
    sigma_px = fwhm * FWHM_TO_SIGMA / step
    m = np.arange(-half_width, half_width + 1)
    k = np.exp(-0.5 * (m[None, :] / sigma_px[:, None]) ** 2)
    return k / k.sum(axis=1, keepdims=True)


def lsf_matrix(kernel: torch.Tensor) -> torch.Tensor:
    """The LSF as a sparse [P, P] matrix (CSR): row j holds the weights ``kernel[j]`` of pixels j-H .. j+H,
    the pixels beyond the grid replaced by the edge pixel (replicate padding). Build it outside torch.func
    transforms (``SpectrumModel`` does so when it is created or converted)."""
    from scipy.sparse import csr_matrix

    k = kernel.detach().cpu().numpy().copy()  # scipy sorts the entries in place
    n, width = k.shape
    h = (width - 1) // 2
    cols = np.clip(np.arange(n)[:, None] + np.arange(-h, h + 1)[None, :], 0, n - 1)
    m = csr_matrix((k.reshape(-1), cols.reshape(-1), np.arange(0, n * width + 1, width)), shape=(n, n))
    m.sum_duplicates()
    rows, cols = torch.as_tensor(m.indptr, dtype=torch.int64), torch.as_tensor(m.indices, dtype=torch.int64)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": products with a dense matrix are all we use
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(rows, cols, torch.as_tensor(m.data, dtype=kernel.dtype), (n, n),
                                       device=kernel.device, check_invariants=True)


class SparseOperator:
    """A sparse matrix passed to ``SparseLinear`` as a plain object (torch.func lifts every tensor argument,
    and sparse tensors cannot be lifted)."""

    def __init__(self, matrix: torch.Tensor):
        self.matrix = matrix
        self._transposed = None

    def __deepcopy__(self, memo):  # never changed in place, so copies of a model may share it
        return self

    def transposed(self) -> SparseOperator:
        if self._transposed is None:
            self._transposed = SparseOperator(self.matrix.to_dense().T.to_sparse_csr())
        return self._transposed

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        return (self.matrix @ flat.T).T.reshape(x.shape)


class SparseLinear(torch.autograd.Function):
    """x [..., P] -> x A^T for a fixed sparse A, with its forward-mode rule (a linear map is its own JVP),
    its reverse-mode rule, and a vmap rule that folds the batch into the rows: torch.func's own batching
    of a 17-tap loop costs ~10x the forward pass."""

    @staticmethod
    def forward(x, op):
        return op(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.op = inputs[1]

    @staticmethod
    def jvp(ctx, x_t, _):
        return SparseLinear.apply(x_t, ctx.op)

    @staticmethod
    def backward(ctx, grad):
        return SparseLinear.apply(grad, ctx.op.transposed()), None

    @staticmethod
    def vmap(info, in_dims, x, op):
        return SparseLinear.apply(x.movedim(in_dims[0], 0), op), 0


def apply_lsf(flux: torch.Tensor, op: SparseOperator) -> torch.Tensor:
    """flux [..., P] convolved with the LSF of ``op`` (``SparseOperator(lsf_matrix(kernel))``)."""
    return SparseLinear.apply(flux, op)
