"""UBM training: EM statistics of diagonal and full GMMs, and the
initialisation of a diagonal UBM from frames.

As in Kaldi's sid/train_diag_ubm.sh (gmm-global-init-from-feats: random
frames as means, the global variance, EM with Gaussian splitting; then
Gaussian selection once and EM restricted to the selected Gaussians) and
sid/train_full_ubm.sh (full covariances from the diagonal UBM, EM with the
diagonal UBM's Gaussian selection). EM for mixtures: Dempster, Laird and
Rubin (1977), "Maximum likelihood from incomplete data via the EM
algorithm", JRSS B 39(1).

Defaults of the M-step that no step exposes are the constants below; the
options the steps expose (Gaussian counts, iterations, seed) have no
default here: steps/ivector/train_diag_ubm.sh holds them.

Notation: T frames, F feature dimension, C Gaussians, K selected Gaussians
per frame. Everything is float64; log-likelihoods are natural logs (nats).
"""

from __future__ import annotations

import logging
import math
from typing import List, Optional, Tuple

import numpy as np

from ..datadir import PathLike
from .gmm import DiagGmm, FullGmm
from .linalg import CHUNK, check_frames, floor_covariances, packed_outer, softmax_rows, unpack_symmetric
from .npz import load_any, load_npz, save_npz

logger = logging.getLogger(__name__)

VAR_FLOOR_FACTOR = 0.001  # (co)variance floor relative to the global (co)variance of the data
MIN_COUNT = 10.0          # Gaussians with less occupancy keep their parameters
PERTURB_FACTOR = 0.2      # mean perturbation of a split, in standard deviations


def _dense_posteriors(post: np.ndarray, gselect: Optional[np.ndarray], num_gauss: int) -> np.ndarray:
    """``(T, K)`` posteriors over the ``gselect``ed Gaussians as ``(T, C)``."""
    if gselect is None:
        return post
    dense = np.zeros((post.shape[0], num_gauss))
    np.put_along_axis(dense, gselect, post, 1)
    return dense


class _GmmAcc:
    """EM statistics of a GMM, shared by :class:`DiagGmmAcc` and
    :class:`FullGmmAcc`, which differ in the second-order term and in the
    second-order part of the M-step.

    Attributes:
      occ: ``(C,)`` occupancies; x: ``(C, F)`` sum of ``gamma_tc x_t``;
      second: ``(C, S)`` sums of the second-order term of ``x_t``;
      loglike: total log-likelihood of the accumulated frames under the
      model used; frames: number of frames.

    Accumulators of split jobs combine with :meth:`add`.
    """

    kind = ""
    floored_what = ""  # what the floor counts, for the log

    def __init__(self, num_gauss: int, dim: int):
        self.occ = np.zeros(num_gauss)
        self.x = np.zeros((num_gauss, dim))
        self.second = np.zeros((num_gauss, self._second_width(dim)))
        self.loglike = 0.0
        self.frames = 0.0

    @staticmethod
    def _second_width(dim: int) -> int:
        raise NotImplementedError

    @staticmethod
    def _second_order(x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _update_second(self, gmm, means: np.ndarray, ok: np.ndarray, total: float,
                       var_floor_factor: float) -> Tuple[np.ndarray, int]:
        """The new (co)variances, floored, and the number of floored values."""
        raise NotImplementedError

    def accumulate(self, gmm, x: np.ndarray, gselect: Optional[np.ndarray] = None) -> float:
        """E-step on a block of frames.

        Posteriors are over all components, or over the ``gselect``ed ones
        only (Kaldi's gmm-global-acc-stats / fgmm-global-acc-stats
        --gselect); the frame log-likelihood is the log-sum-exp over the
        same set. Statistics are matrix products per block of frames.

        Args:
          gmm: the current model.
          x: ``(T, F)``.
          gselect: ``(T, K)`` indices or None.

        Returns:
          the total log-likelihood of ``x``.
        """
        x = check_frames(x, gmm.dim)
        total = 0.0
        for s in range(0, x.shape[0], CHUNK):
            xc = x[s:s + CHUNK]
            g = None if gselect is None else gselect[s:s + CHUNK]
            post, ll = softmax_rows(gmm.loglikes(xc, g))
            post = _dense_posteriors(post, g, gmm.num_gauss)
            self.occ += post.sum(0)
            self.x += post.T @ xc
            self.second += post.T @ self._second_order(xc)
            total += float(ll.sum())
        self.loglike += total
        self.frames += x.shape[0]
        return total

    def update(self, gmm, min_gaussian_weight: float = 0.0, var_floor_factor: float = VAR_FLOOR_FACTOR,
               min_count: float = MIN_COUNT):
        """M-step (Kaldi's gmm-global-est / fgmm-global-est).

        ``w_c = occ_c / sum occ``, ``mu_c = x_c / occ_c``; the second-order
        part is the subclass's (:meth:`DiagGmmAcc.update`,
        :meth:`FullGmmAcc.update`). A component with ``occ_c < min_count``
        keeps its mean and (co)variance. With ``min_gaussian_weight > 0``
        (0: off) components of smaller weight are removed (use it on the
        last iteration only, as sid/train_diag_ubm.sh does); otherwise
        weights are floored at 1e-10.

        Returns:
          ``(new model, log-likelihood per frame of the accumulated data
          under the old model)``.

        Raises:
          ValueError: no data accumulated, or every component removed.
        """
        name = type(self).__name__
        total = self.occ.sum()
        if total <= 0:
            raise ValueError(f"{name}.update: no statistics accumulated")
        ok = self.occ >= min_count
        means = gmm.means.copy()
        means[ok] = self.x[ok] / self.occ[ok, None]
        second, n_floored = self._update_second(gmm, means, ok, total, var_floor_factor)
        if (~ok).any():
            logger.info("%d Gaussians with occupancy below %g keep their parameters", int((~ok).sum()), min_count)
        if n_floored:
            logger.info("%d %s floored", n_floored, self.floored_what)
        weights = self.occ / total
        if min_gaussian_weight > 0:
            keep = weights >= min_gaussian_weight
            if not keep.any():
                raise ValueError(f"{name}.update: every Gaussian is below --min-gaussian-weight")
            if (~keep).any():
                logger.info("removed %d Gaussians with weight below %g", int((~keep).sum()), min_gaussian_weight)
            weights, means, second = weights[keep], means[keep], second[keep]
        else:
            weights = np.maximum(weights, 1e-10)
        return type(gmm)(weights / weights.sum(), means, second), self.objf_per_frame

    def check(self, gmm) -> None:
        """Raise ValueError if the statistics are not of ``gmm``'s size."""
        if self.occ.shape[0] != gmm.num_gauss:
            raise ValueError(f"accumulators have {self.occ.shape[0]} Gaussians, the model {gmm.num_gauss}")

    def add(self, other: "_GmmAcc") -> None:
        """Add another job's statistics."""
        self.occ += other.occ
        self.x += other.x
        self.second += other.second
        self.loglike += other.loglike
        self.frames += other.frames

    def save(self, path: PathLike) -> None:
        """Write the statistics to an .npz, atomically."""
        save_npz(path, self.kind, occ=self.occ, x=self.x, second=self.second,
                 loglike=np.array(self.loglike), frames=np.array(self.frames))

    @classmethod
    def load(cls, path: PathLike):
        """Read :meth:`save`'s file (ValueError if it holds something else)."""
        d = load_npz(path, cls.kind)
        acc = cls(*d["x"].shape)
        acc.occ, acc.x, acc.second = d["occ"], d["x"], d["second"]
        acc.loglike, acc.frames = float(d["loglike"]), float(d["frames"])
        return acc

    @property
    def objf_per_frame(self) -> float:
        """Accumulated log-likelihood divided by the number of frames."""
        return self.loglike / max(self.frames, 1.0)


class DiagGmmAcc(_GmmAcc):
    """EM statistics of a :class:`DiagGmm` (Kaldi's AccumDiagGmm); the
    second-order term is ``x2``: ``(C, F)`` sums of ``gamma_tc x_t^2``.

    :meth:`update` (MleDiagGmmUpdate): ``var_c = x2_c / occ_c - mu_c^2``
    floored at ``var_floor_factor`` times the global variance of the
    accumulated data (and at 1e-10).
    """

    kind = "diag_gmm_acc"
    floored_what = "variances"

    @staticmethod
    def _second_width(dim: int) -> int:
        return dim

    @staticmethod
    def _second_order(x: np.ndarray) -> np.ndarray:
        return x * x

    @property
    def x2(self) -> np.ndarray:
        return self.second

    def _update_second(self, gmm: DiagGmm, means, ok, total, var_floor_factor):
        gmean = self.x.sum(0) / total
        floor = np.maximum(var_floor_factor * (self.x2.sum(0) / total - gmean ** 2), 1e-10)
        var = gmm.vars.copy()
        var[ok] = self.x2[ok] / self.occ[ok, None] - means[ok] ** 2
        n_floored = int((var < floor).sum())
        return np.maximum(var, floor), n_floored


class FullGmmAcc(_GmmAcc):
    """EM statistics of a :class:`FullGmm` (Kaldi's AccumFullGmm); the
    second-order term is ``xx``: ``(C, F(F+1)/2)`` packed sums of
    ``gamma_tc x_t x_t^T``.

    :meth:`update` (MleFullGmmUpdate): ``Sigma_c = xx_c / occ_c - mu_c
    mu_c^T``, floored with :func:`~mtlasr.ivector.linalg.floor_covariances`
    at ``var_floor_factor`` times the global covariance of the accumulated
    data (plus 1e-10 I).
    """

    kind = "full_gmm_acc"
    floored_what = "covariance eigenvalues"

    @staticmethod
    def _second_width(dim: int) -> int:
        return dim * (dim + 1) // 2

    @staticmethod
    def _second_order(x: np.ndarray) -> np.ndarray:
        return packed_outer(x)

    @property
    def xx(self) -> np.ndarray:
        return self.second

    def _update_second(self, gmm: FullGmm, means, ok, total, var_floor_factor):
        dim = gmm.dim
        gmean = self.x.sum(0) / total
        gcov = unpack_symmetric(self.xx.sum(0), dim) / total - np.outer(gmean, gmean)
        floor = var_floor_factor * gcov + 1e-10 * np.eye(dim)
        covs = gmm.covars.copy()
        covs[ok] = (unpack_symmetric(self.xx[ok], dim) / self.occ[ok, None, None]
                    - means[ok, :, None] * means[ok, None, :])
        return floor_covariances(covs, floor)


def make_acc(gmm):
    """An empty :class:`DiagGmmAcc` or :class:`FullGmmAcc` for ``gmm``."""
    cls = FullGmmAcc if isinstance(gmm, FullGmm) else DiagGmmAcc
    return cls(gmm.num_gauss, gmm.dim)


def load_acc(path: PathLike):
    """A :class:`DiagGmmAcc` or :class:`FullGmmAcc`, whichever ``path`` holds.

    Raises:
      FileNotFoundError, ValueError: missing file, or not a GMM accumulator.
    """
    return load_any(path, (DiagGmmAcc, FullGmmAcc), "GMM accumulator")


def init_diag_ubm(frames: np.ndarray, num_gauss: int, num_gauss_init: int, num_iters: int, *, seed: int,
                  var_floor_factor: float = VAR_FLOOR_FACTOR, perturb_factor: float = PERTURB_FACTOR,
                  min_count: float = MIN_COUNT) -> Tuple[DiagGmm, List[float]]:
    """Initialise a diagonal UBM from frames (Kaldi's gmm-global-init-from-feats).

    Starts from ``num_gauss_init`` components (0: ``num_gauss // 2``) with
    means at distinct random frames, the global variance and equal weights;
    runs ``num_iters`` EM iterations over all components; after each of the
    first ``num_iters // 2`` iterations the heaviest components are split
    (:meth:`DiagGmm.split`) so that the count grows linearly to
    ``num_gauss``.

    Args:
      frames: ``(T, F)``, T >= num_gauss (e.g. a random subset of the data).
      seed: of the initial means and of the splits.

    Returns:
      ``(model, log-likelihood per frame of each iteration)``.

    Raises:
      ValueError: fewer frames than Gaussians, non-finite frames.
    """
    x = np.asarray(frames, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < num_gauss:
        raise ValueError(f"init_diag_ubm: need at least {num_gauss} frames, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("init_diag_ubm: non-finite frames")
    rng = np.random.default_rng(seed)
    c0 = min(num_gauss, num_gauss_init if num_gauss_init > 0 else max(1, num_gauss // 2))
    gvar = np.maximum(x.var(0), 1e-10)
    gmm = DiagGmm(np.full(c0, 1.0 / c0), x[rng.choice(x.shape[0], c0, replace=False)], np.tile(gvar, (c0, 1)))
    split_iters = max(1, num_iters // 2)
    history: List[float] = []
    for it in range(num_iters):
        acc = DiagGmmAcc(gmm.num_gauss, gmm.dim)
        acc.accumulate(gmm, x)
        n = gmm.num_gauss
        gmm, objf = acc.update(gmm, var_floor_factor=var_floor_factor, min_count=min_count)
        change = f" (change {objf - history[-1]:+.4f})" if history else ""
        history.append(objf)
        logger.info("init iteration %d: log-likelihood per frame %.4f%s, %d Gaussians", it, objf, change, n)
        if it < split_iters and gmm.num_gauss < num_gauss:
            target = c0 + math.ceil((num_gauss - c0) * (it + 1) / split_iters)
            gmm = gmm.split(min(target, num_gauss), rng, perturb_factor)
    if gmm.num_gauss < num_gauss:
        gmm = gmm.split(num_gauss, rng, perturb_factor)
    return gmm, history
