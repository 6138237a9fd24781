"""EM statistics and M-step of the i-vector extractor.

Kaldi's IvectorExtractorStats without weight statistics: the E-step of
Kenny, Boulianne and Dumouchel (2005), the M-step of their Proposition 3
(projections and residual covariances), and the prior re-estimated and
made standard again after each M-step (Kaldi's UpdatePrior; Kenny, Ouellet,
Dehak, Gupta and Dumouchel (2008), "A study of inter-speaker variability in
speaker verification", IEEE TASLP 16(5)).

Defaults of the M-step that no step exposes are the constants below; the
covariance floor has none here: steps/ivector/train_ivector_extractor.sh
holds it (``--variance-floor-factor``).

Notation: C Gaussians, F feature dimension, D i-vector dimension, N
utterances in a batch.
"""

from __future__ import annotations

import logging

import numpy as np

from ..datadir import PathLike
from .extractor import IvectorExtractor
from .linalg import floor_covariances, inv_pd, sym
from .npz import load_npz, save_npz

logger = logging.getLogger(__name__)

GAUSSIAN_MIN_COUNT = 100.0  # Gaussians with a smaller count keep their covariance
UPDATE_PRIOR = True         # re-estimate the prior after each M-step


class IvectorExtractorAcc:
    """EM statistics of the i-vector extractor (Kaldi IvectorExtractorStats,
    without weight statistics).

    Per utterance with posterior mean ``wbar`` and covariance ``Cov`` of w,
    ``E[ww^T] = Cov + wbar wbar^T`` and:

      Y_c += f_c wbar^T (F, D);  R_c += gamma_c E[ww^T] (D, D);
      gamma_c += gamma_c;        S_c += second-order statistics (F, F);
      prior: count += 1, w_sum += wbar, ww_sum += E[ww^T];

    plus the summed objective (:meth:`IvectorExtractor.log_likelihood`
    under the model used) and the frame count.
    """

    kind = "ivector_extractor_acc"

    def __init__(self, num_gauss: int, feat_dim: int, ivector_dim: int):
        c, f, d = num_gauss, feat_dim, ivector_dim
        self.gamma = np.zeros(c)
        self.Y = np.zeros((c, f, d))
        self.R = np.zeros((c, d, d))
        self.S = np.zeros((c, f, f))
        self.count = 0.0
        self.w_sum = np.zeros(d)
        self.ww_sum = np.zeros((d, d))
        self.objf = 0.0
        self.frames = 0.0

    @classmethod
    def for_extractor(cls, ie: IvectorExtractor) -> "IvectorExtractorAcc":
        """Empty statistics of the extractor's sizes."""
        return cls(ie.num_gauss, ie.feat_dim, ie.ivector_dim)

    def accumulate(self, ie: IvectorExtractor, gamma: np.ndarray, f: np.ndarray, S_sum: np.ndarray,
                   num_frames: float) -> float:
        """E-step for a batch of utterances.

        Args:
          ie: the current extractor.
          gamma: ``(N, C)``; f: ``(N, C, F)``; S_sum: ``(C, F, F)`` the
            batch's second-order statistics summed over its utterances;
          num_frames: frames in the batch (for the per-frame objective).

        Returns:
          the batch's total log-likelihood.
        """
        gamma, f = ie.check_stats(gamma, f)
        n, (c, fd, d) = gamma.shape[0], ie.M.shape
        mean, cov = ie.posterior(gamma, f)
        eww = cov + mean[:, :, None] * mean[:, None, :]
        self.Y += (f.reshape(n, c * fd).T @ mean).reshape(c, fd, d)
        self.R += (gamma.T @ eww.reshape(n, d * d)).reshape(c, d, d)
        self.gamma += gamma.sum(0)
        self.S += S_sum
        self.count += n
        self.w_sum += mean.sum(0)
        self.ww_sum += eww.sum(0)
        ll = ie.total_log_likelihood(gamma, f, S_sum)
        self.objf += ll
        self.frames += num_frames
        return ll

    def check(self, ie: IvectorExtractor) -> None:
        """Raise ValueError if the statistics are not of ``ie``'s sizes."""
        if self.Y.shape != ie.M.shape:
            raise ValueError(f"accumulators of shape {self.Y.shape} do not fit the extractor {ie.M.shape}")

    def add(self, other: "IvectorExtractorAcc") -> None:
        """Add another job's statistics."""
        for name in ("gamma", "Y", "R", "S", "w_sum", "ww_sum"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.count += other.count
        self.objf += other.objf
        self.frames += other.frames

    def save(self, path: PathLike) -> None:
        """Write the statistics to an .npz, atomically."""
        save_npz(path, self.kind, gamma=self.gamma, Y=self.Y, R=self.R, S=self.S, count=np.array(self.count),
                  w_sum=self.w_sum, ww_sum=self.ww_sum, objf=np.array(self.objf), frames=np.array(self.frames))

    @classmethod
    def load(cls, path: PathLike) -> "IvectorExtractorAcc":
        """Read :meth:`save`'s file (ValueError if it holds something else)."""
        d = load_npz(path, cls.kind)
        acc = cls(*d["Y"].shape)
        for name in ("gamma", "Y", "R", "S", "w_sum", "ww_sum"):
            setattr(acc, name, d[name])
        acc.count, acc.objf, acc.frames = float(d["count"]), float(d["objf"]), float(d["frames"])
        return acc

    @property
    def objf_per_frame(self) -> float:
        """Accumulated log-likelihood divided by the number of frames."""
        return self.objf / max(self.frames, 1.0)

    def update(self, ie: IvectorExtractor, variance_floor_factor: float,
               gaussian_min_count: float = GAUSSIAN_MIN_COUNT, update_prior: bool = UPDATE_PRIOR) -> IvectorExtractor:
        """M-step (Kenny et al. 2005, Proposition 3; Kaldi
        IvectorExtractorStats::Update: UpdateProjections, UpdateVariances,
        UpdatePrior).

        * ``M_c = Y_c R_c^-1``;
        * ``Sigma_c = (S_c - M_c Y_c^T - Y_c M_c^T + M_c R_c M_c^T) / gamma_c``,
          symmetrised, floored (:func:`floor_covariances`) at
          ``variance_floor_factor`` times the gamma-weighted average of the
          new Sigma_c; Gaussians with ``gamma_c < gaussian_min_count`` keep
          their old Sigma_c (and, if ``gamma_c`` is ~0, their old M_c);
        * prior: ``m = w_sum / count``,
          ``covar = ww_sum / count - m m^T`` is the M-step for the prior of
          w; :meth:`IvectorExtractor.transform_prior` then makes it standard
          without changing the likelihood.

        Returns:
          the new extractor.

        Raises:
          ValueError: no statistics.
        """
        if self.count <= 0 or self.gamma.sum() <= 0:
            raise ValueError("IvectorExtractorAcc.update: no statistics accumulated")
        c = ie.num_gauss
        tiny = self.gamma < 1e-6 * max(self.gamma.max(), 1.0)
        M = ie.M.copy()
        ok = ~tiny
        # M_c^T = R_c^-1 Y_c^T (R_c symmetric)
        M[ok] = np.swapaxes(np.linalg.solve(self.R[ok], np.swapaxes(self.Y[ok], 1, 2)), 1, 2)
        MYt = M @ np.swapaxes(self.Y, 1, 2)
        num = self.S - MYt - np.swapaxes(MYt, 1, 2) + M @ self.R @ np.swapaxes(M, 1, 2)
        upd = ok & (self.gamma >= gaussian_min_count)
        sigma = ie.Sigma
        if upd.any():
            new = sym(num[upd] / self.gamma[upd, None, None])
            avg = np.einsum("c,cfg->fg", self.gamma[upd], new) / self.gamma[upd].sum()
            new, n_floored = floor_covariances(new, variance_floor_factor * avg)
            sigma[upd] = new
            if n_floored:
                logger.info("variance floor: %d eigenvalues floored", n_floored)
        if (~upd).any():
            logger.info("%d of %d Gaussians have counts below %g and keep their covariance",
                        int((~upd).sum()), c, gaussian_min_count)
        out = IvectorExtractor(M, inv_pd(sigma), ie.w, ie.prior_offset)
        if update_prior:
            m = self.w_sum / self.count
            cov = self.ww_sum / self.count - np.outer(m, m)
            out = out.transform_prior(m, cov)
            logger.info("prior: |mean| %.3f, covariance eigenvalues %.3g .. %.3g, new prior offset %.3f",
                        float(np.linalg.norm(m)), *np.linalg.eigvalsh(sym(cov))[[0, -1]], out.prior_offset)
        return out
