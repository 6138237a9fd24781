"""Linear algebra shared by the GMMs and the i-vector extractor.

Packed symmetric matrices (upper triangles in the order of
``np.triu_indices``), log-determinants and inverses of positive-definite
matrices, row-wise softmax of log-likelihoods, and the flooring of
covariance matrices in the positive-semidefinite sense. Everything is
float64; ``F`` is a feature dimension, ``T`` a number of frames.
"""

from __future__ import annotations

import math
from typing import Tuple

import numpy as np

LOG_2PI = math.log(2.0 * math.pi)
CHUNK = 4096  # frames per block in batched computations (bounds memory)


def _packed_index(dim: int) -> Tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the upper triangle (diagonal included)."""
    return np.triu_indices(dim)


def packed_outer(x: np.ndarray) -> np.ndarray:
    """Outer products of the rows of ``x``, upper triangles only.

    Args:
      x: ``(T, F)``.

    Returns:
      ``(T, F (F + 1) / 2)``: entry p of row t is ``x[t, i] x[t, j]`` for the
      p-th pair ``(i, j)`` of ``np.triu_indices(F)``.
    """
    i, j = _packed_index(x.shape[1])
    return x[:, i] * x[:, j]


def unpack_symmetric(p: np.ndarray, dim: int) -> np.ndarray:
    """Inverse of the packing of :func:`packed_outer`: ``(..., F(F+1)/2)`` to
    symmetric ``(..., F, F)``."""
    i, j = _packed_index(dim)
    out = np.zeros(p.shape[:-1] + (dim, dim))
    out[..., i, j] = p
    out[..., j, i] = p
    return out


def pack_for_quadratic(a: np.ndarray) -> np.ndarray:
    """Pack symmetric ``(..., F, F)`` matrices so that
    ``packed_outer(x) @ packed.T == x^T A x``: upper triangle, off-diagonal
    entries doubled."""
    dim = a.shape[-1]
    i, j = _packed_index(dim)
    return a[..., i, j] * np.where(i == j, 1.0, 2.0)


def softmax_rows(ll: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Row-wise posteriors and log-sum-exp of log-likelihoods ``(T, K)``.

    Returns:
      ``(posteriors (T, K), log-sum-exp (T,))``.
    """
    m = ll.max(axis=1, keepdims=True)
    p = np.exp(ll - m)
    s = p.sum(axis=1, keepdims=True)
    return p / s, (m + np.log(s))[:, 0]


def logdet_pd(a: np.ndarray, what: str = "matrix") -> np.ndarray:
    """log-determinants of positive-definite ``(..., n, n)`` via Cholesky.

    Raises:
      ValueError: a matrix is not positive definite (``what`` names it).
    """
    try:
        chol = np.linalg.cholesky(a)
    except np.linalg.LinAlgError as e:
        raise ValueError(f"{what} is not positive definite: {e}") from e
    return 2.0 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(-1)


def sym(a: np.ndarray) -> np.ndarray:
    """``(A + A^T) / 2`` over the last two axes."""
    return 0.5 * (a + np.swapaxes(a, -1, -2))


def inv_pd(a: np.ndarray) -> np.ndarray:
    """Inverse of (a batch of) symmetric positive-definite matrices, symmetrised."""
    return sym(np.linalg.inv(a))


def floor_covariances(covs: np.ndarray, floor: np.ndarray) -> Tuple[np.ndarray, int]:
    """Floor covariance matrices in the positive-semidefinite sense.

    Each ``Sigma`` is replaced by the smallest matrix ``>= Sigma`` and
    ``>= floor`` along the eigenvectors of ``Sigma`` after whitening by the
    floor: with ``floor = L L^T``, ``B = L^-1 Sigma L^-T = Q diag(l) Q^T``,
    the result is ``L Q diag(max(l, 1)) Q^T L^T`` (what Kaldi's
    SpMatrix::ApplyFloor does).

    Args:
      covs: ``(C, F, F)`` symmetric.
      floor: ``(F, F)`` positive definite.

    Returns:
      ``(floored (C, F, F), number of eigenvalues raised)``.

    Raises:
      ValueError: the floor is not positive definite.
    """
    try:
        chol = np.linalg.cholesky(floor)
    except np.linalg.LinAlgError as e:
        raise ValueError(f"covariance floor is not positive definite: {e}") from e
    linv = np.linalg.inv(chol)
    b = sym(linv @ covs @ linv.T)
    lam, q = np.linalg.eigh(b)
    n_floored = int((lam < 1.0).sum())
    lam = np.maximum(lam, 1.0)
    out = chol @ (q * lam[..., None, :]) @ np.swapaxes(q, -1, -2) @ chol.T
    return sym(out), n_floored


def check_frames(x: np.ndarray, dim: int, what: str = "features") -> np.ndarray:
    """``x`` as float64 ``(T, dim)``.

    Raises:
      ValueError: another shape (``what`` names the input).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"{what}: expected shape (T, {dim}), got {x.shape}")
    return x
