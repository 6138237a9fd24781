"""The i-vector extractor (total-variability model), Kaldi's formulation.

The model of Dehak et al. (2011), "Front-end factor analysis for speaker
verification", IEEE TASLP 19(4), with the E-step of Kenny, Boulianne and
Dumouchel (2005), "Eigenvoice modeling with sparse training data", IEEE
TSAP 13(3), as in Kaldi's ivector/ivector-extractor.cc without weight
projections (``use_weights=false``): the mean supervector is absorbed into
the projection M through a prior offset (the prior of w is
N([prior_offset, 0, ..., 0], I)), and first-order statistics are
uncentered. Training statistics and the M-step are in
:mod:`mtlasr.ivector.extractor_acc`.

Notation: C Gaussians, F feature dimension, D i-vector dimension, N
utterances in a batch, T frames. Everything is float64; log-likelihoods
are natural logs (nats).
"""

from __future__ import annotations

import logging
from typing import Optional, Tuple

import numpy as np

from ..datadir import PathLike
from .gmm import FullGmm
from .linalg import LOG_2PI, check_frames, inv_pd, logdet_pd, sym
from .npz import load_npz, save_npz
from .posteriors import post_matrix

logger = logging.getLogger(__name__)

INIT_SCALE = 0.1  # scale of the random initial directions, relative to the UBM's spread


class IvectorExtractor:
    """I-vector extractor (total-variability model), Kaldi's formulation.

    Model (Dehak et al. 2011; Kaldi ivector-extractor.h): for an utterance
    with i-vector ``w`` (D,), a frame aligned to Gaussian c is distributed as
    ``N(M_c w, Sigma_c)``, and ``w ~ N(mu0, I)`` with
    ``mu0 = [prior_offset, 0, ..., 0]``; the UBM means live in column 0 of
    M (``M_c mu0 = m_c`` at initialisation). Frame-to-Gaussian posteriors
    come from the UBM and are held fixed.

    Attributes:
      M: ``(C, F, D)`` projections.
      Sigma_inv: ``(C, F, F)`` inverse residual covariances.
      w: ``(C,)`` UBM weights (kept, unused without weight projections).
      prior_offset: float.
      U: ``(C, D, D)``, ``M_c^T Sigma_c^-1 M_c`` (derived).

    Raises (constructor):
      ValueError: inconsistent shapes or a Sigma_inv that is not positive
        definite.
    """

    kind = "ivector_extractor"

    def __init__(self, M: np.ndarray, Sigma_inv: np.ndarray, w: np.ndarray, prior_offset: float):
        self.M = np.asarray(M, dtype=np.float64)
        self.Sigma_inv = sym(np.asarray(Sigma_inv, dtype=np.float64))
        self.w = np.asarray(w, dtype=np.float64)
        self.prior_offset = float(prior_offset)
        c, f, d = self.M.shape
        if self.Sigma_inv.shape != (c, f, f) or self.w.shape != (c,):
            raise ValueError(f"IvectorExtractor: shapes M {self.M.shape}, Sigma_inv {self.Sigma_inv.shape}, "
                             f"w {self.w.shape} do not agree")
        self._logdet_sigma = -logdet_pd(self.Sigma_inv, "IvectorExtractor Sigma_inv")
        self.SiM = self.Sigma_inv @ self.M                      # Sigma_c^-1 M_c, (C, F, D)
        self.U = sym(np.swapaxes(self.M, 1, 2) @ self.SiM)      # M_c^T Sigma_c^-1 M_c, (C, D, D)

    @property
    def num_gauss(self) -> int:
        return self.M.shape[0]

    @property
    def feat_dim(self) -> int:
        return self.M.shape[1]

    @property
    def ivector_dim(self) -> int:
        return self.M.shape[2]

    @property
    def prior_mean(self) -> np.ndarray:
        """``[prior_offset, 0, ..., 0]`` (D,)."""
        m = np.zeros(self.ivector_dim)
        m[0] = self.prior_offset
        return m

    @property
    def Sigma(self) -> np.ndarray:
        """``(C, F, F)`` residual covariances."""
        return inv_pd(self.Sigma_inv)

    @classmethod
    def from_full_gmm(cls, fgmm: FullGmm, ivector_dim: int, prior_offset: float, seed: int,
                      init_scale: float = INIT_SCALE) -> "IvectorExtractor":
        """Initial extractor from a full-covariance UBM (Kaldi's
        ivector-extractor-init).

        ``M_c[:, 0] = m_c / prior_offset`` so that ``M_c mu0 = m_c``; the
        other columns are ``init_scale * chol(Sigma_c) z`` with ``z`` standard
        normal, i.e. small random directions on the scale of the UBM's
        within-Gaussian spread; ``Sigma_c`` is the UBM covariance.

        Args:
          fgmm: the full UBM (C, F).
          ivector_dim: D.
          prior_offset: element 0 of the prior mean.
          seed: of the random directions.
          init_scale: their scale.

        Raises:
          ValueError: ivector_dim < 1 or prior_offset <= 0.
        """
        if ivector_dim < 1 or prior_offset <= 0:
            raise ValueError(f"ivector_dim must be >= 1 and prior_offset > 0 (got {ivector_dim}, {prior_offset})")
        rng = np.random.default_rng(seed)
        c, f = fgmm.means.shape
        chol = np.linalg.cholesky(fgmm.covars)
        M = np.zeros((c, f, ivector_dim))
        M[:, :, 0] = fgmm.means / prior_offset
        if ivector_dim > 1:
            M[:, :, 1:] = init_scale * (chol @ rng.standard_normal((c, f, ivector_dim - 1)))
        return cls(M, fgmm.precisions.copy(), fgmm.weights.copy(), prior_offset)

    # -- E-step
    def check_stats(self, gamma: np.ndarray, f: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """``(gamma (N, C), f (N, C, F))`` as float64.

        Raises:
          ValueError: statistics of other shapes.
        """
        gamma = np.asarray(gamma, dtype=np.float64)
        f = np.asarray(f, dtype=np.float64)
        c, fd = self.num_gauss, self.feat_dim
        if gamma.ndim != 2 or gamma.shape[1] != c or f.shape != (gamma.shape[0], c, fd):
            raise ValueError(f"statistics of shapes gamma {gamma.shape}, f {f.shape}; expected "
                             f"(N, {c}) and (N, {c}, {fd})")
        return gamma, f

    def _linear_and_precision(self, gamma: np.ndarray, f: np.ndarray, prior_mean: Optional[np.ndarray] = None,
                              prior_covar: Optional[np.ndarray] = None):
        """``a = sum_c M_c^T Sigma_c^-1 f_c + Lambda0 mu0`` (N, D) and
        ``P = Lambda0 + sum_c gamma_c U_c`` (N, D, D), with
        ``Lambda0 = prior_covar^-1`` (identity by default)."""
        gamma, f = self.check_stats(gamma, f)
        n, (c, fd, d) = gamma.shape[0], self.M.shape
        a = f.reshape(n, c * fd) @ self.SiM.reshape(c * fd, d)
        p = (gamma @ self.U.reshape(c, d * d)).reshape(n, d, d)
        mu0 = self.prior_mean if prior_mean is None else np.asarray(prior_mean, dtype=np.float64)
        lam0 = np.eye(d) if prior_covar is None else inv_pd(np.asarray(prior_covar, dtype=np.float64))
        return a + lam0 @ mu0, sym(p + lam0), mu0, lam0

    def posterior(self, gamma: np.ndarray, f: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Posterior of w for a batch of utterances (Kenny et al. 2005,
        Proposition 1; Dehak et al. 2011, eq. 9; Kaldi
        IvectorExtractor::GetIvectorDistribution).

        ``P = I + sum_c gamma_c U_c``, ``a = sum_c M_c^T Sigma_c^-1 f_c + mu0``
        (f uncentered: the UBM mean is in ``M_c mu0``);
        ``mean = P^-1 a``, ``cov = P^-1``.

        Args:
          gamma: ``(N, C)`` zeroth-order statistics.
          f: ``(N, C, F)`` first-order statistics.

        Returns:
          ``(means (N, D), covariances (N, D, D))``.

        Raises:
          ValueError: statistics of the wrong shape.
        """
        a, p, _, _ = self._linear_and_precision(gamma, f)
        cov = inv_pd(p)
        mean = np.linalg.solve(p, a[:, :, None])[:, :, 0]
        return mean, cov

    def extract(self, gamma: np.ndarray, f: np.ndarray) -> np.ndarray:
        """I-vectors of a batch of utterances: the posterior mean with
        ``prior_offset`` subtracted from element 0 (Kaldi's ivector-extract).

        Returns:
          ``(N, D)``.
        """
        mean, _ = self.posterior(gamma, f)
        mean[:, 0] -= self.prior_offset
        return mean

    def online_ivectors(self, x: np.ndarray, post_idx: np.ndarray, post_val: np.ndarray,
                        period: int) -> np.ndarray:
        """I-vectors of one utterance every ``period`` frames (Kaldi's
        ``--ivector-period``): row k is the i-vector of the statistics of
        frames ``0 .. k * period`` (inclusive).

        Statistics of the segments ``{0}, (0, p], (p, 2p], ...`` come from
        one sparse product, their cumulative sums give every row's
        statistics, and one batched solve all the i-vectors. (The features
        are those of the whole-utterance pipeline, speaker CMVN included:
        this is cumulative, not truly online, extraction.)

        Args:
          x: ``(T, F)``, T > 0.
          post_idx, post_val: ``(T, K)`` from :func:`posteriors`.
          period: frames between rows.

        Returns:
          ``(ceil(T / period), D)``.

        Raises:
          ValueError: T == 0, period < 1, or shapes that disagree.
        """
        x = check_frames(x, self.feat_dim)
        t = x.shape[0]
        if t == 0 or period < 1:
            raise ValueError(f"online_ivectors: need T > 0 and period >= 1 (got T={t}, period={period})")
        k = -(-t // period)
        seg = (np.arange(t) + period - 1) // period          # 0, 1 x p, 2 x p, ...
        use = seg < k                                           # frames after the last row are unused
        c = self.num_gauss
        g = post_matrix(post_idx[use], post_val[use], c, seg[use], k)
        gamma = np.cumsum(np.asarray(g.sum(1)).reshape(k, c), axis=0)
        f = np.cumsum(np.asarray(g @ x[use]).reshape(k, c, self.feat_dim), axis=0)
        return self.extract(gamma, f)

    # -- objective
    def log_likelihood(self, gamma: np.ndarray, f: np.ndarray, S: np.ndarray,
                       prior_mean: Optional[np.ndarray] = None,
                       prior_covar: Optional[np.ndarray] = None) -> np.ndarray:
        """Marginal log-likelihood of each utterance's statistics, w integrated
        out (the objective that EM increases).

        Derivation. With the frame posteriors ``gamma_tc`` fixed, the
        (posterior-weighted) log-likelihood of the frames given w is

          log p(X|w) = sum_t sum_c gamma_tc log N(x_t; M_c w, Sigma_c)
                     = K_X + w^T b - 0.5 w^T (sum_c gamma_c U_c) w,

        ``K_X = sum_c [-0.5 gamma_c (F log 2pi + log|Sigma_c|)
        - 0.5 tr(Sigma_c^-1 S_c)]``, ``b = sum_c M_c^T Sigma_c^-1 f_c``. The
        prior ``N(w; mu0, Lambda0^-1)`` adds ``-0.5 D log 2pi
        + 0.5 log|Lambda0| - 0.5 (w - mu0)^T Lambda0 (w - mu0)``. The sum is
        ``K - 0.5 w^T P w + w^T a`` with ``P = Lambda0 + sum_c gamma_c U_c``,
        ``a = b + Lambda0 mu0``, ``K = K_X - 0.5 D log 2pi
        + 0.5 log|Lambda0| - 0.5 mu0^T Lambda0 mu0``. The Gaussian integral
        ``int exp(w^T a - 0.5 w^T P w) dw
        = (2pi)^(D/2) |P|^(-1/2) exp(0.5 a^T P^-1 a)`` gives

          log p(X) = K_X + 0.5 log|Lambda0| - 0.5 mu0^T Lambda0 mu0
                     - 0.5 log|P| + 0.5 a^T P^-1 a,

        which for the standard prior (``Lambda0 = I``) is
        ``K_X - 0.5 log|P| + 0.5 a^T P^-1 a - 0.5 mu0^T mu0``.

        Args:
          gamma: ``(N, C)``; f: ``(N, C, F)``; S: ``(N, C, F, F)`` per
            utterance second-order statistics (uncentered).
          prior_mean, prior_covar: another prior ``N(prior_mean,
            prior_covar)`` than the model's (used to check the prior
            re-parametrisation); default the model's own.

        Returns:
          ``(N,)`` log-likelihoods (nats).
        """
        gamma, f = self.check_stats(gamma, f)
        S = np.asarray(S, dtype=np.float64)
        if S.shape != f.shape + (self.feat_dim,):
            raise ValueError(f"second-order stats of shape {S.shape}, expected {f.shape + (self.feat_dim,)}")
        s_term = -0.5 * np.einsum("cfg,ncfg->n", self.Sigma_inv, S)
        return self._loglike_w_terms(gamma, f, prior_mean, prior_covar) + s_term

    def total_log_likelihood(self, gamma: np.ndarray, f: np.ndarray, S_sum: np.ndarray) -> float:
        """Sum over the batch of :meth:`log_likelihood`, given the second-order
        statistics summed over the batch ``S_sum (C, F, F)`` (the S term is
        linear in S, so per-utterance S are not needed)."""
        s_term = -0.5 * float(np.einsum("cfg,cfg->", self.Sigma_inv, np.asarray(S_sum, dtype=np.float64)))
        return float(self._loglike_w_terms(gamma, f).sum()) + s_term

    def _loglike_w_terms(self, gamma, f, prior_mean=None, prior_covar=None) -> np.ndarray:
        """Every term of :meth:`log_likelihood` except ``-0.5 tr(Sigma^-1 S)``."""
        a, p, mu0, lam0 = self._linear_and_precision(gamma, f, prior_mean, prior_covar)
        logdet_p = logdet_pd(p, "posterior precision")
        quad = np.einsum("nd,nd->n", a, np.linalg.solve(p, a[:, :, None])[:, :, 0])
        const = gamma @ (-0.5 * (self.feat_dim * LOG_2PI + self._logdet_sigma))
        prior = 0.5 * logdet_pd(lam0, "prior precision") - 0.5 * mu0 @ lam0 @ mu0
        return const + prior - 0.5 * logdet_p + 0.5 * quad

    # -- prior re-parametrisation
    def transform_prior(self, mean: np.ndarray, covar: np.ndarray, eig_floor: float = 1e-10) -> "IvectorExtractor":
        """The equivalent extractor whose prior is standard again (Kaldi
        IvectorExtractorStats::UpdatePrior).

        Given a prior ``N(mean, covar)`` for the current M, finds ``A`` with
        ``A covar A^T = I`` (``A0 = diag(l^-1/2) Q^T`` from
        ``covar = Q diag(l) Q^T``) followed by the Householder reflection H
        mapping ``A0 mean`` to ``[||A0 mean||, 0, ..., 0]``; ``A = H A0``.
        With ``w' = A w``, ``M_c w = (M_c A^-1) w'`` and
        ``w' ~ N([||A0 mean||, 0, ...], I)``: the new model is
        ``M_c' = M_c A^-1``, ``prior_offset' = ||A0 mean||`` and assigns the
        same likelihood to any data.

        Args:
          mean: ``(D,)``; covar: ``(D, D)`` positive definite (eigenvalues
            below ``eig_floor * max`` are floored, with a warning).
        """
        mean = np.asarray(mean, dtype=np.float64)
        lam, q = np.linalg.eigh(sym(np.asarray(covar, dtype=np.float64)))
        floor = eig_floor * max(lam.max(), 1e-300)
        if (lam < floor).any():
            logger.warning("prior covariance: %d eigenvalues floored", int((lam < floor).sum()))
            lam = np.maximum(lam, floor)
        a0 = q.T / np.sqrt(lam)[:, None]
        v = a0 @ mean
        norm = float(np.linalg.norm(v))
        u = v.copy()
        u[0] -= norm
        h = np.eye(len(v))
        if np.linalg.norm(u) > 1e-12 * max(norm, 1.0):
            h -= 2.0 * np.outer(u, u) / (u @ u)
        a_inv = (q * np.sqrt(lam)) @ h                     # (H A0)^-1 = A0^-1 H, H = H^-1
        return IvectorExtractor(self.M @ a_inv, self.Sigma_inv, self.w, norm)

    # -- I/O
    def save(self, path: PathLike) -> None:
        """Write an .npz (kind, M, Sigma_inv, w, prior_offset), atomically."""
        save_npz(path, self.kind, M=self.M, Sigma_inv=self.Sigma_inv, w=self.w,
                  prior_offset=np.array(self.prior_offset))

    @classmethod
    def load(cls, path: PathLike) -> "IvectorExtractor":
        """Read a file written by :meth:`save`.

        Raises:
          FileNotFoundError, ValueError: missing file, or not an extractor.
        """
        d = load_npz(path, cls.kind)
        return cls(d["M"], d["Sigma_inv"], d["w"], float(d["prior_offset"]))
