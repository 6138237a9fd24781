"""Gaussian mixtures with diagonal and full covariances (the UBMs).

Per-component log-likelihoods are computed for a whole block of frames with
matrix products: for a diagonal GMM from ``x`` and ``x^2``, for a full GMM
through the packed outer products of the frames (as Kaldi's
FullGmm::LogLikelihoods does). Gaussian selection (Kaldi's gmm-gselect),
Gaussian splitting (DiagGmm::Split) and the conversions between the two
kinds (gmm-global-to-fgmm, fgmm-global-to-gmm) are here too; training is in
:mod:`mtlasr.ivector.ubm`.

Notation: T frames, F feature dimension, C Gaussians, K selected Gaussians
per frame. Everything is float64; log-likelihoods are natural logs (nats).
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from ..datadir import PathLike
from .linalg import CHUNK, LOG_2PI, check_frames, inv_pd, logdet_pd, pack_for_quadratic, packed_outer, sym
from .npz import load_any, load_npz, save_npz


class _Gmm:
    """What :class:`DiagGmm` and :class:`FullGmm` share: sizes and files.

    A subclass names its kind (the .npz tag) and its ``fields``, the
    constructor's arguments, which are also its attributes and the arrays of
    its file.
    """

    kind = ""
    fields: Tuple[str, ...] = ()

    @property
    def num_gauss(self) -> int:
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def save(self, path: PathLike) -> None:
        """Write an .npz (kind and the fields), atomically."""
        save_npz(path, self.kind, **{name: getattr(self, name) for name in self.fields})

    @classmethod
    def load(cls, path: PathLike):
        """Read a file written by :meth:`save`.

        Raises:
          FileNotFoundError, ValueError: missing file, or another kind of file.
        """
        d = load_npz(path, cls.kind)
        return cls(*(d[name] for name in cls.fields))


class DiagGmm(_Gmm):
    """Diagonal-covariance GMM.

    Attributes:
      weights: ``(C,)``, summing to 1.
      means: ``(C, F)``.
      vars: ``(C, F)`` variances, positive.

    Raises (constructor):
      ValueError: inconsistent shapes, non-positive variances or weights.
    """

    kind = "diag_gmm"
    fields = ("weights", "means", "vars")

    def __init__(self, weights: np.ndarray, means: np.ndarray, vars: np.ndarray):
        self.weights = np.asarray(weights, dtype=np.float64)
        self.means = np.asarray(means, dtype=np.float64)
        self.vars = np.asarray(vars, dtype=np.float64)
        c, f = self.means.shape
        if self.weights.shape != (c,) or self.vars.shape != (c, f):
            raise ValueError(f"DiagGmm: shapes weights {self.weights.shape}, means {self.means.shape}, "
                             f"vars {self.vars.shape} do not agree")
        if (self.vars <= 0).any() or (self.weights <= 0).any():
            raise ValueError("DiagGmm: variances and weights must be positive")

    def loglikes(self, x: np.ndarray, gselect: Optional[np.ndarray] = None) -> np.ndarray:
        """Per-component ``log(w_c N(x_t; mu_c, diag(var_c)))``.

        Computed with matrix products:
        ``gconst_c + x mu_c/var_c - 0.5 x^2 / var_c`` where
        ``gconst_c = log w_c - 0.5 (F log 2pi + sum log var_c + sum mu_c^2/var_c)``.

        Args:
          x: ``(T, F)`` frames.
          gselect: ``(T, K)`` component indices, or None for all.

        Returns:
          ``(T, C)``, or ``(T, K)`` in the order of ``gselect``.

        Raises:
          ValueError: ``x`` of the wrong dimension.
        """
        x = check_frames(x, self.dim)
        gconst, lin, quad = self.loglike_terms()
        out = np.empty((x.shape[0], self.num_gauss if gselect is None else gselect.shape[1]))
        for s in range(0, x.shape[0], CHUNK):
            xc = x[s:s + CHUNK]
            ll = gconst + xc @ lin + (xc * xc) @ quad
            out[s:s + CHUNK] = ll if gselect is None else np.take_along_axis(ll, gselect[s:s + CHUNK], 1)
        return out

    def loglike_terms(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The terms of :meth:`loglikes`: ``(gconst (C,), lin (F, C), quad
        (F, C))`` with ``loglikes(x) = gconst + x @ lin + (x * x) @ quad``
        (``lin = (mu / var)^T``, ``quad = -0.5 (1 / var)^T``)."""
        inv = 1.0 / self.vars
        gconst = np.log(self.weights) - 0.5 * (self.dim * LOG_2PI + np.log(self.vars).sum(1)
                                               + (self.means ** 2 * inv).sum(1))
        return gconst, (self.means * inv).T, -0.5 * inv.T

    def gselect(self, x: np.ndarray, num_gselect: int) -> np.ndarray:
        """Gaussian selection (Kaldi's gmm-gselect): the ``num_gselect``
        components with the highest :meth:`loglikes` for each frame.

        Returns:
          ``(T, K) int32``, K = min(num_gselect, C), best first.
        """
        x = check_frames(x, self.dim)
        k = min(int(num_gselect), self.num_gauss)
        out = np.empty((x.shape[0], k), dtype=np.int32)
        for s in range(0, x.shape[0], CHUNK):
            ll = self.loglikes(x[s:s + CHUNK])
            idx = np.argpartition(-ll, k - 1, axis=1)[:, :k] if k < self.num_gauss else \
                np.broadcast_to(np.arange(k), ll.shape).copy()
            order = np.argsort(-np.take_along_axis(ll, idx, 1), axis=1, kind="stable")
            out[s:s + CHUNK] = np.take_along_axis(idx, order, 1)
        return out

    def split(self, target: int, rng: np.random.Generator, perturb_factor: float) -> "DiagGmm":
        """Split the heaviest components until there are ``target``.

        Each split halves the weight of the currently heaviest component and
        replaces its mean by ``mu +/- perturb_factor * sqrt(var) * z`` with
        ``z ~ N(0, I)``, the copy taking the other sign (variances copied),
        in the manner of Kaldi's DiagGmm::Split.
        """
        w, mu, var = list(self.weights), list(self.means), list(self.vars)
        while len(w) < target:
            c = int(np.argmax(w))
            w[c] /= 2.0
            delta = perturb_factor * np.sqrt(var[c]) * rng.standard_normal(self.dim)
            base = mu[c]
            mu[c] = base + delta
            w.append(w[c])
            mu.append(base - delta)
            var.append(var[c].copy())
        return DiagGmm(np.array(w), np.array(mu), np.array(var))


class FullGmm(_Gmm):
    """Full-covariance GMM.

    Attributes:
      weights: ``(C,)``.
      means: ``(C, F)``.
      covars: ``(C, F, F)`` positive definite.
      precisions: ``(C, F, F)`` inverse covariances (derived).

    Raises (constructor):
      ValueError: inconsistent shapes, a covariance that is not positive
        definite (naming the component), non-positive weights.
    """

    kind = "full_gmm"
    fields = ("weights", "means", "covars")

    def __init__(self, weights: np.ndarray, means: np.ndarray, covars: np.ndarray):
        self.weights = np.asarray(weights, dtype=np.float64)
        self.means = np.asarray(means, dtype=np.float64)
        self.covars = sym(np.asarray(covars, dtype=np.float64))
        c, f = self.means.shape
        if self.weights.shape != (c,) or self.covars.shape != (c, f, f):
            raise ValueError(f"FullGmm: shapes weights {self.weights.shape}, means {self.means.shape}, "
                             f"covars {self.covars.shape} do not agree")
        if (self.weights <= 0).any():
            raise ValueError("FullGmm: weights must be positive")
        bad = np.flatnonzero(np.linalg.eigvalsh(self.covars)[:, 0] <= 0)
        if bad.size:
            raise ValueError(f"FullGmm: covariance of component(s) {bad[:10].tolist()} not positive definite")
        self.precisions = inv_pd(self.covars)
        logdet = logdet_pd(self.covars, "FullGmm covariance")
        self._lin = np.einsum("cfg,cg->cf", self.precisions, self.means)  # P_c mu_c
        self._gconst = np.log(self.weights) - 0.5 * (f * LOG_2PI + logdet
                                                     + np.einsum("cf,cf->c", self.means, self._lin))
        self._quad = -0.5 * pack_for_quadratic(self.precisions)  # (C, F(F+1)/2)

    @classmethod
    def from_diag(cls, dgmm: DiagGmm) -> "FullGmm":
        """The same mixture with full (diagonal-valued) covariances, as Kaldi's
        gmm-global-to-fgmm."""
        covars = np.zeros((dgmm.num_gauss, dgmm.dim, dgmm.dim))
        covars[:, np.arange(dgmm.dim), np.arange(dgmm.dim)] = dgmm.vars
        return cls(dgmm.weights.copy(), dgmm.means.copy(), covars)

    def to_diag(self) -> DiagGmm:
        """Diagonal of each covariance (Kaldi's fgmm-global-to-gmm)."""
        return DiagGmm(self.weights.copy(), self.means.copy(),
                       np.diagonal(self.covars, axis1=1, axis2=2).copy())

    def loglike_terms(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The terms of :meth:`loglikes`: ``(gconst (C,), lin (C, F), quad
        (C, F(F+1)/2))`` with ``loglikes(x) = gconst + x @ lin.T
        + packed_outer(x) @ quad.T`` (``lin_c = P_c mu_c``, ``quad`` the
        packed ``-0.5 P_c``, off-diagonal entries doubled)."""
        return self._gconst, self._lin, self._quad

    def loglikes(self, x: np.ndarray, gselect: Optional[np.ndarray] = None) -> np.ndarray:
        """Per-component ``log(w_c N(x_t; mu_c, Sigma_c))``.

        ``gconst_c + x^T P_c mu_c - 0.5 x^T P_c x`` with ``P_c = Sigma_c^-1``;
        the quadratic term is the product of the packed outer products of the
        frames ``(T, F(F+1)/2)`` with the packed precisions (Kaldi's
        FullGmm::LogLikelihoods). With ``gselect``, all components are
        computed and the selected ones picked when C <= 16 K (a BLAS product
        beats gathering there); otherwise only the selected pairs are
        computed (einsum over the gathered parameters). Arguments, result
        and errors as :meth:`DiagGmm.loglikes`.
        """
        x = check_frames(x, self.dim)
        k = self.num_gauss if gselect is None else gselect.shape[1]
        out = np.empty((x.shape[0], k))
        gather = gselect is not None and self.num_gauss > 16 * k
        # Gathered parameters take K * F(F+1)/2 floats per frame: keep blocks ~32 MB.
        step = max(1, 4_000_000 // max(1, k * self._quad.shape[1])) if gather else CHUNK
        for s in range(0, x.shape[0], step):
            xc = x[s:s + step]
            xx = packed_outer(xc)
            if not gather:
                ll = self._gconst + xc @ self._lin.T + xx @ self._quad.T
                out[s:s + step] = ll if gselect is None else np.take_along_axis(ll, gselect[s:s + step], 1)
            else:
                g = gselect[s:s + step]
                out[s:s + step] = (self._gconst[g] + np.einsum("tf,tkf->tk", xc, self._lin[g])
                                   + np.einsum("tp,tkp->tk", xx, self._quad[g]))
        return out


def load_gmm(path: PathLike):
    """A :class:`DiagGmm` or :class:`FullGmm`, whichever ``path`` holds.

    Raises:
      FileNotFoundError, ValueError: missing file, or not a GMM.
    """
    return load_any(path, (DiagGmm, FullGmm), "GMM")
