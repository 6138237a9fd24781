"""GMM-UBM and i-vector extractor, in Kaldi's formulation, batched in numpy.

What is here, and where each formula comes from:

* :class:`DiagGmm`, :class:`FullGmm`: Gaussian mixtures whose per-component
  log-likelihoods are computed for a whole block of frames with matrix
  products (the quadratic form of a full covariance through packed outer
  products of the frames, as Kaldi's FullGmm::LogLikelihoods does).
* UBM training as in Kaldi's sid/train_diag_ubm.sh (gmm-global-init-from-feats:
  random frames as means, global variance, EM with Gaussian splitting; then
  Gaussian selection once and EM restricted to the selected Gaussians) and
  sid/train_full_ubm.sh (full covariances from the diagonal UBM, EM with the
  diagonal UBM's Gaussian selection). EM for mixtures: Dempster, Laird and
  Rubin (1977).
* :func:`posteriors`: Kaldi's fgmm-global-gselect-to-post (+ scale-post).
* :class:`IvectorExtractor`: the total-variability model of Dehak et al.
  (2011), "Front-end factor analysis for speaker verification", IEEE TASLP
  19(4), with the E-step and M-step of Kenny, Boulianne and Dumouchel (2005),
  "Eigenvoice modeling with sparse training data", and Kenny, Ouellet, Dehak,
  Gupta and Dumouchel (2008), "A study of inter-speaker variability in
  speaker verification". It follows Kaldi's variant (ivector/ivector-extractor.cc,
  without weight projections, i.e. ``use_weights=false``): the mean
  supervector is absorbed into the projection M through a prior offset (the
  prior of w is N([prior_offset, 0, ..., 0], I)), first-order statistics are
  uncentered, and after each M-step the prior is re-estimated and the model
  re-parametrised so that the prior is standard again (Kaldi's UpdatePrior).

Notation: T frames, F feature dimension, C Gaussians, K selected Gaussians
per frame, D i-vector dimension, N utterances. Everything is float64.
Log-likelihoods are natural logs (nats).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .datadir import PathLike, atomic_open, read_table
from .features import CMVN_MODES, read_cmvn_mode, read_feature_opts, write_feature_opts  # noqa: F401 (re-exported)

logger = logging.getLogger(__name__)

LOG_2PI = math.log(2.0 * math.pi)
CHUNK = 4096  # frames per block in batched computations (bounds memory)


# ------------------------------------------------------------------ helpers
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


def _pack_for_quadratic(a: np.ndarray) -> np.ndarray:
    """Pack symmetric ``(..., F, F)`` matrices so that
    ``packed_outer(x) @ packed.T == x^T A x``: upper triangle, off-diagonal
    entries doubled."""
    dim = a.shape[-1]
    i, j = _packed_index(dim)
    return a[..., i, j] * np.where(i == j, 1.0, 2.0)


def _softmax_rows(ll: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Row-wise posteriors and log-sum-exp of log-likelihoods ``(T, K)``."""
    m = ll.max(axis=1, keepdims=True)
    p = np.exp(ll - m)
    s = p.sum(axis=1, keepdims=True)
    return p / s, (m + np.log(s))[:, 0]


def _logdet_pd(a: np.ndarray, what: str = "matrix") -> np.ndarray:
    """log-determinants of positive-definite ``(..., n, n)`` via Cholesky.

    Raises:
      ValueError: a matrix is not positive definite.
    """
    try:
        chol = np.linalg.cholesky(a)
    except np.linalg.LinAlgError as e:
        raise ValueError(f"{what} is not positive definite: {e}") from e
    return 2.0 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(-1)


def _sym(a: np.ndarray) -> np.ndarray:
    return 0.5 * (a + np.swapaxes(a, -1, -2))


def _inv_pd(a: np.ndarray) -> np.ndarray:
    """Inverse of (a batch of) symmetric positive-definite matrices, symmetrised."""
    return _sym(np.linalg.inv(a))


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
    b = _sym(linv @ covs @ linv.T)
    lam, q = np.linalg.eigh(b)
    n_floored = int((lam < 1.0).sum())
    lam = np.maximum(lam, 1.0)
    out = chol @ (q * lam[..., None, :]) @ np.swapaxes(q, -1, -2) @ chol.T
    return _sym(out), n_floored


def _kind_of(path: PathLike) -> str:
    with np.load(path, allow_pickle=False) as d:
        if "kind" not in d:
            raise ValueError(f"{path}: not a model or accumulator file of mtlasr.ivector (no 'kind')")
        return str(d["kind"])


def _save_npz(path: PathLike, kind: str, **arrays) -> None:
    """Write ``arrays`` plus ``kind`` to ``path`` (.npz), atomically."""
    with atomic_open(path, "wb") as f:
        np.savez(f, kind=np.array(kind), **arrays)


def _load_npz(path: PathLike, kind: str) -> Dict[str, np.ndarray]:
    """Arrays of an .npz written by :func:`_save_npz`, checking its kind.

    Raises:
      FileNotFoundError: no such file.
      ValueError: the file holds something else.
    """
    with np.load(path, allow_pickle=False) as d:
        got = str(d["kind"]) if "kind" in d else "?"
        if got != kind:
            raise ValueError(f"{path}: expected a {kind} file, found {got}")
        return {k: d[k] for k in d.files if k != "kind"}


def _check_frames(x: np.ndarray, dim: int, what: str = "features") -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"{what}: expected shape (T, {dim}), got {x.shape}")
    return x


# ----------------------------------------------------------- feature input
def iter_features(data_dir: PathLike, norm_vars: bool, delta_order: int, dim: Optional[int] = None,
                  skipped: Optional[List[Tuple[str, str]]] = None,
                  cmvn_mode: str = "speaker") -> Iterator[Tuple[str, np.ndarray]]:
    """Features of a data dir, one utterance at a time, checked.

    CMVN per ``cmvn_mode``: ``speaker`` (the data dir's cmvn.scp, as
    :func:`mtlasr.features.load_features` and the acoustic models),
    ``utterance`` (the utterance's own statistics, close to Kaldi sid's
    sliding CMN on short utterances) or ``none``; then deltas
    (:func:`mtlasr.features.add_deltas`).

    Args:
      data_dir: holds feats.scp, cmvn.scp and utt2spk.
      norm_vars, delta_order: feature options (see :func:`read_feature_opts`).
      dim: the model's feature dimension, checked if given.
      skipped: if given, ``(utt, reason)`` is appended for every utterance
        skipped (an utterance with no frames; a warning naming it is logged).

    Yields:
      ``(utt, x)`` with ``x`` of shape ``(T, F) float64``, T > 0, in
      feats.scp order.

    Raises:
      FileNotFoundError: feats.scp, cmvn.scp or utt2spk missing.
      KeyError: an utterance without speaker or a speaker without CMVN stats.
      ValueError: non-finite (NaN/Inf) features, naming the utterance and
        its feats.scp entry (checked before CMVN, so that a bad utterance is
        not blamed on its speaker's other utterances; non-finite CMVN stats
        name the utterance that caused them, or else the speaker); a feature dimension other than ``dim``, naming
        the utterance and the file.
    """
    import kaldiio

    from .features import add_deltas, apply_cmvn, cmvn_stats

    if cmvn_mode not in CMVN_MODES:
        raise ValueError(f"cmvn mode '{cmvn_mode}' is not one of {', '.join(CMVN_MODES)}")
    data_dir = Path(data_dir)
    feats_scp = read_table(data_dir / "feats.scp")
    cmvn_scp = read_table(data_dir / "cmvn.scp")
    utt2spk = read_table(data_dir / "utt2spk")
    cmvn: Dict[str, np.ndarray] = {}
    for utt, spec in feats_scp.items():
        raw = np.asarray(kaldiio.load_mat(spec), dtype=np.float32)
        if raw.ndim != 2 or raw.shape[0] == 0:
            reason = "no frames"
            logger.warning("utterance %s (%s/feats.scp): %s; skipped", utt, data_dir, reason)
            if skipped is not None:
                skipped.append((utt, reason))
            continue
        if not np.isfinite(raw).all():
            bad = int((~np.isfinite(raw).all(axis=1)).sum())
            raise ValueError(f"utterance {utt}: non-finite features (NaN or Inf) in {bad} of "
                             f"{raw.shape[0]} frames ({data_dir}/feats.scp: {spec})")
        spk = utt2spk.get(utt)
        if spk is None:
            raise KeyError(f"{data_dir}/utt2spk: no speaker for utterance {utt}")
        if cmvn_mode != "speaker":
            x = raw if cmvn_mode == "none" else apply_cmvn(raw, cmvn_stats(raw), norm_vars)
            if delta_order:
                x = add_deltas(x, delta_order)
            if dim is not None and x.shape[1] != dim:
                raise ValueError(f"utterance {utt}: feature dimension {x.shape[1]} (raw {raw.shape[1]}, "
                                 f"delta order {delta_order}) does not match the model's {dim} "
                                 f"({data_dir}/feats.scp: {spec})")
            yield utt, x.astype(np.float64)
            continue
        if spk not in cmvn:
            if spk not in cmvn_scp:
                raise KeyError(f"{data_dir}/cmvn.scp: no CMVN stats for speaker {spk}")
            stats = np.asarray(kaldiio.load_mat(cmvn_scp[spk]), dtype=np.float64)
            if not np.isfinite(stats).all():
                # Most likely from an utterance with non-finite features: name it.
                for other in (u for u, s in utt2spk.items() if s == spk and u in feats_scp):
                    if not np.isfinite(kaldiio.load_mat(feats_scp[other])).all():
                        raise ValueError(f"utterance {other}: non-finite features (NaN or Inf), which also "
                                         f"spoil the CMVN stats of its speaker {spk} ({data_dir}/feats.scp: "
                                         f"{feats_scp[other]})")
                raise ValueError(f"speaker {spk}: non-finite CMVN stats ({data_dir}/cmvn.scp: {cmvn_scp[spk]})")
            cmvn[spk] = stats
        x = apply_cmvn(raw, cmvn[spk], norm_vars)
        if delta_order:
            x = add_deltas(x, delta_order)
        if dim is not None and x.shape[1] != dim:
            raise ValueError(f"utterance {utt}: feature dimension {x.shape[1]} (raw {raw.shape[1]}, "
                             f"delta order {delta_order}) does not match the model's {dim} "
                             f"({data_dir}/feats.scp: {spec})")
        yield utt, x.astype(np.float64)


class Throughput:
    """Frames per second of a job: ``add(num_frames)``, then ``str()``."""

    def __init__(self):
        self.start = time.time()
        self.frames = 0
        self.utts = 0

    def add(self, num_frames: int) -> None:
        self.frames += int(num_frames)
        self.utts += 1

    def __str__(self) -> str:
        sec = max(time.time() - self.start, 1e-9)
        return f"{self.utts} utterances, {self.frames} frames in {sec:.2f} s ({self.frames / sec:.0f} frames/s)"


# -------------------------------------------------------------- diagonal GMM
class DiagGmm:
    """Diagonal-covariance GMM.

    Attributes:
      weights: ``(C,)``, summing to 1.
      means: ``(C, F)``.
      vars: ``(C, F)`` variances, positive.

    Raises (constructor):
      ValueError: inconsistent shapes, non-positive variances or weights.
    """

    kind = "diag_gmm"

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

    @property
    def num_gauss(self) -> int:
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

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
        x = _check_frames(x, self.dim)
        inv = 1.0 / self.vars
        gconst = np.log(self.weights) - 0.5 * (self.dim * LOG_2PI + np.log(self.vars).sum(1)
                                               + (self.means ** 2 * inv).sum(1))
        out = np.empty((x.shape[0], self.num_gauss if gselect is None else gselect.shape[1]))
        lin, quad = (self.means * inv).T, -0.5 * inv.T
        for s in range(0, x.shape[0], CHUNK):
            xc = x[s:s + CHUNK]
            ll = gconst + xc @ lin + (xc * xc) @ quad
            out[s:s + CHUNK] = ll if gselect is None else np.take_along_axis(ll, gselect[s:s + CHUNK], 1)
        return out

    def gselect(self, x: np.ndarray, num_gselect: int) -> np.ndarray:
        """Gaussian selection (Kaldi's gmm-gselect): the ``num_gselect``
        components with the highest :meth:`loglikes` for each frame.

        Returns:
          ``(T, K) int32``, K = min(num_gselect, C), best first.
        """
        x = _check_frames(x, self.dim)
        k = min(int(num_gselect), self.num_gauss)
        out = np.empty((x.shape[0], k), dtype=np.int32)
        for s in range(0, x.shape[0], CHUNK):
            ll = self.loglikes(x[s:s + CHUNK])
            idx = np.argpartition(-ll, k - 1, axis=1)[:, :k] if k < self.num_gauss else \
                np.broadcast_to(np.arange(k), ll.shape).copy()
            order = np.argsort(-np.take_along_axis(ll, idx, 1), axis=1, kind="stable")
            out[s:s + CHUNK] = np.take_along_axis(idx, order, 1)
        return out

    def split(self, target: int, rng: np.random.Generator, perturb_factor: float = 0.2) -> "DiagGmm":
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

    def save(self, path: PathLike) -> None:
        """Write an .npz (kind, weights, means, vars), atomically."""
        _save_npz(path, self.kind, weights=self.weights, means=self.means, vars=self.vars)

    @classmethod
    def load(cls, path: PathLike) -> "DiagGmm":
        """Read a file written by :meth:`save`.

        Raises:
          FileNotFoundError, ValueError: missing file, or not a diagonal GMM.
        """
        d = _load_npz(path, cls.kind)
        return cls(d["weights"], d["means"], d["vars"])


# ------------------------------------------------------------------ full GMM
class FullGmm:
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

    def __init__(self, weights: np.ndarray, means: np.ndarray, covars: np.ndarray):
        self.weights = np.asarray(weights, dtype=np.float64)
        self.means = np.asarray(means, dtype=np.float64)
        self.covars = _sym(np.asarray(covars, dtype=np.float64))
        c, f = self.means.shape
        if self.weights.shape != (c,) or self.covars.shape != (c, f, f):
            raise ValueError(f"FullGmm: shapes weights {self.weights.shape}, means {self.means.shape}, "
                             f"covars {self.covars.shape} do not agree")
        if (self.weights <= 0).any():
            raise ValueError("FullGmm: weights must be positive")
        bad = np.flatnonzero(np.linalg.eigvalsh(self.covars)[:, 0] <= 0)
        if bad.size:
            raise ValueError(f"FullGmm: covariance of component(s) {bad[:10].tolist()} not positive definite")
        self.precisions = _inv_pd(self.covars)
        logdet = _logdet_pd(self.covars, "FullGmm covariance")
        self._lin = np.einsum("cfg,cg->cf", self.precisions, self.means)  # P_c mu_c
        self._gconst = np.log(self.weights) - 0.5 * (f * LOG_2PI + logdet
                                                     + np.einsum("cf,cf->c", self.means, self._lin))
        self._quad = -0.5 * _pack_for_quadratic(self.precisions)  # (C, F(F+1)/2)

    @property
    def num_gauss(self) -> int:
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

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

    def loglikes(self, x: np.ndarray, gselect: Optional[np.ndarray] = None) -> np.ndarray:
        """Per-component ``log(w_c N(x_t; mu_c, Sigma_c))``.

        ``gconst_c + x^T P_c mu_c - 0.5 x^T P_c x`` with ``P_c = Sigma_c^-1``;
        the quadratic term is the product of the packed outer products of the
        frames ``(T, F(F+1)/2)`` with the packed precisions (Kaldi's
        FullGmm::LogLikelihoods). With ``gselect``, all components are
        computed and the selected ones picked when C <= 16 K (a BLAS product
        beats gathering there); otherwise only the selected pairs are
        computed (einsum over the gathered parameters).

        Args:
          x: ``(T, F)`` frames.
          gselect: ``(T, K)`` component indices, or None for all.

        Returns:
          ``(T, C)``, or ``(T, K)`` in the order of ``gselect``.

        Raises:
          ValueError: ``x`` of the wrong dimension.
        """
        x = _check_frames(x, self.dim)
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

    def save(self, path: PathLike) -> None:
        """Write an .npz (kind, weights, means, covars), atomically."""
        _save_npz(path, self.kind, weights=self.weights, means=self.means, covars=self.covars)

    @classmethod
    def load(cls, path: PathLike) -> "FullGmm":
        """Read a file written by :meth:`save`.

        Raises:
          FileNotFoundError, ValueError: missing file, or not a full GMM.
        """
        d = _load_npz(path, cls.kind)
        return cls(d["weights"], d["means"], d["covars"])


def load_gmm(path: PathLike):
    """A :class:`DiagGmm` or :class:`FullGmm`, whichever ``path`` holds."""
    kind = _kind_of(path)
    if kind == DiagGmm.kind:
        return DiagGmm.load(path)
    if kind == FullGmm.kind:
        return FullGmm.load(path)
    raise ValueError(f"{path}: not a GMM (kind {kind})")


def _dense_posteriors(post: np.ndarray, gselect: Optional[np.ndarray], num_gauss: int) -> np.ndarray:
    if gselect is None:
        return post
    dense = np.zeros((post.shape[0], num_gauss))
    np.put_along_axis(dense, gselect, post, 1)
    return dense


# ------------------------------------------------------------- GMM training
class _GmmAcc:
    """EM statistics of a GMM, shared by :class:`DiagGmmAcc` and
    :class:`FullGmmAcc`, which differ in the second-order term.

    Attributes:
      occ: ``(C,)`` occupancies; x: ``(C, F)`` sum of ``gamma_tc x_t``;
      second: ``(C, S)`` sums of the second-order term of ``x_t``;
      loglike: total log-likelihood of the accumulated frames under the
      model used; frames: number of frames.

    Accumulators of split jobs combine with :meth:`add`.
    """

    kind = ""

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
        x = _check_frames(x, gmm.dim)
        total = 0.0
        for s in range(0, x.shape[0], CHUNK):
            xc = x[s:s + CHUNK]
            g = None if gselect is None else gselect[s:s + CHUNK]
            post, ll = _softmax_rows(gmm.loglikes(xc, g))
            post = _dense_posteriors(post, g, gmm.num_gauss)
            self.occ += post.sum(0)
            self.x += post.T @ xc
            self.second += post.T @ self._second_order(xc)
            total += float(ll.sum())
        self.loglike += total
        self.frames += x.shape[0]
        return total

    def add(self, other: "_GmmAcc") -> None:
        """Add another job's statistics."""
        self.occ += other.occ
        self.x += other.x
        self.second += other.second
        self.loglike += other.loglike
        self.frames += other.frames

    def save(self, path: PathLike) -> None:
        """Write the statistics to an .npz, atomically."""
        _save_npz(path, self.kind, occ=self.occ, x=self.x, second=self.second,
                  loglike=np.array(self.loglike), frames=np.array(self.frames))

    @classmethod
    def load(cls, path: PathLike):
        """Read :meth:`save`'s file (ValueError if it holds something else)."""
        d = _load_npz(path, cls.kind)
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
    second-order term is ``x2``: ``(C, F)`` sums of ``gamma_tc x_t^2``."""

    kind = "diag_gmm_acc"

    @staticmethod
    def _second_width(dim: int) -> int:
        return dim

    @staticmethod
    def _second_order(x: np.ndarray) -> np.ndarray:
        return x * x

    @property
    def x2(self) -> np.ndarray:
        return self.second

    def update(self, gmm: DiagGmm, min_gaussian_weight: float = 0.0, var_floor_factor: float = 0.001,
               min_count: float = 10.0) -> Tuple[DiagGmm, float]:
        """M-step (Kaldi's gmm-global-est / MleDiagGmmUpdate).

        ``w_c = occ_c / sum occ``, ``mu_c = x_c / occ_c``,
        ``var_c = x2_c / occ_c - mu_c^2`` floored at ``var_floor_factor``
        times the global variance of the accumulated data. A component with
        ``occ_c < min_count`` keeps its mean and variance. With
        ``min_gaussian_weight > 0`` components of smaller weight are removed
        (use it on the last iteration only, as sid/train_diag_ubm.sh does);
        otherwise weights are floored at 1e-10.

        Returns:
          ``(new model, log-likelihood per frame of the accumulated data
          under the old model)``.

        Raises:
          ValueError: no data accumulated, or every component removed.
        """
        total = self.occ.sum()
        if total <= 0:
            raise ValueError("DiagGmmAcc.update: no statistics accumulated")
        gmean = self.x.sum(0) / total
        floor = np.maximum(var_floor_factor * (self.x2.sum(0) / total - gmean ** 2), 1e-10)
        ok = self.occ >= min_count
        means, var = gmm.means.copy(), gmm.vars.copy()
        means[ok] = self.x[ok] / self.occ[ok, None]
        var[ok] = self.x2[ok] / self.occ[ok, None] - means[ok] ** 2
        n_floored = int((var < floor).sum())
        var = np.maximum(var, floor)
        weights = self.occ / total
        if (~ok).any():
            logger.info("%d Gaussians with occupancy below %g keep their parameters", int((~ok).sum()), min_count)
        if n_floored:
            logger.info("%d variances floored", n_floored)
        if min_gaussian_weight > 0:
            keep = weights >= min_gaussian_weight
            if not keep.any():
                raise ValueError("DiagGmmAcc.update: every Gaussian is below --min-gaussian-weight")
            if (~keep).any():
                logger.info("removed %d Gaussians with weight below %g", int((~keep).sum()), min_gaussian_weight)
            weights, means, var = weights[keep], means[keep], var[keep]
        else:
            weights = np.maximum(weights, 1e-10)
        return DiagGmm(weights / weights.sum(), means, var), self.objf_per_frame


class FullGmmAcc(_GmmAcc):
    """EM statistics of a :class:`FullGmm` (Kaldi's AccumFullGmm); the
    second-order term is ``xx``: ``(C, F(F+1)/2)`` packed sums of
    ``gamma_tc x_t x_t^T``."""

    kind = "full_gmm_acc"

    @staticmethod
    def _second_width(dim: int) -> int:
        return dim * (dim + 1) // 2

    @staticmethod
    def _second_order(x: np.ndarray) -> np.ndarray:
        return packed_outer(x)

    @property
    def xx(self) -> np.ndarray:
        return self.second

    def update(self, gmm: FullGmm, min_gaussian_weight: float = 0.0, var_floor_factor: float = 0.001,
               min_count: float = 10.0) -> Tuple[FullGmm, float]:
        """M-step (Kaldi's fgmm-global-est / MleFullGmmUpdate).

        ``Sigma_c = xx_c / occ_c - mu_c mu_c^T``, floored with
        :func:`floor_covariances` at ``var_floor_factor`` times the global
        covariance of the accumulated data; otherwise as
        :meth:`DiagGmmAcc.update`.

        Returns:
          ``(new model, log-likelihood per frame under the old model)``.

        Raises:
          ValueError: no data, or every component removed.
        """
        total = self.occ.sum()
        if total <= 0:
            raise ValueError("FullGmmAcc.update: no statistics accumulated")
        dim = gmm.dim
        gmean = self.x.sum(0) / total
        gcov = unpack_symmetric(self.xx.sum(0), dim) / total - np.outer(gmean, gmean)
        floor = var_floor_factor * gcov + 1e-10 * np.eye(dim)
        ok = self.occ >= min_count
        means, covs = gmm.means.copy(), gmm.covars.copy()
        means[ok] = self.x[ok] / self.occ[ok, None]
        covs[ok] = (unpack_symmetric(self.xx[ok], dim) / self.occ[ok, None, None]
                    - means[ok, :, None] * means[ok, None, :])
        covs, n_floored = floor_covariances(covs, floor)
        if (~ok).any():
            logger.info("%d Gaussians with occupancy below %g keep their parameters", int((~ok).sum()), min_count)
        if n_floored:
            logger.info("%d covariance eigenvalues floored", n_floored)
        weights = self.occ / total
        if min_gaussian_weight > 0:
            keep = weights >= min_gaussian_weight
            if not keep.any():
                raise ValueError("FullGmmAcc.update: every Gaussian is below --min-gaussian-weight")
            if (~keep).any():
                logger.info("removed %d Gaussians with weight below %g", int((~keep).sum()), min_gaussian_weight)
            weights, means, covs = weights[keep], means[keep], covs[keep]
        else:
            weights = np.maximum(weights, 1e-10)
        return FullGmm(weights / weights.sum(), means, covs), self.objf_per_frame


def make_acc(gmm):
    """An empty :class:`DiagGmmAcc` or :class:`FullGmmAcc` for ``gmm``."""
    cls = FullGmmAcc if isinstance(gmm, FullGmm) else DiagGmmAcc
    return cls(gmm.num_gauss, gmm.dim)


def load_acc(path: PathLike):
    """A :class:`DiagGmmAcc` or :class:`FullGmmAcc`, whichever ``path`` holds."""
    kind = _kind_of(path)
    for cls in (DiagGmmAcc, FullGmmAcc):
        if kind == cls.kind:
            return cls.load(path)
    raise ValueError(f"{path}: not a GMM accumulator (kind {kind})")


def init_diag_ubm(frames: np.ndarray, num_gauss: int, num_gauss_init: int = 0, num_iters: int = 20,
                  var_floor_factor: float = 0.001, perturb_factor: float = 0.2, min_count: float = 10.0,
                  seed: int = 0) -> Tuple[DiagGmm, List[float]]:
    """Initialise a diagonal UBM from frames (Kaldi's gmm-global-init-from-feats).

    Starts from ``num_gauss_init`` components (0: ``num_gauss // 2``) with
    means at distinct random frames, the global variance and equal weights;
    runs ``num_iters`` EM iterations over all components; after each of the
    first ``num_iters // 2`` iterations the heaviest components are split
    (:meth:`DiagGmm.split`) so that the count grows linearly to
    ``num_gauss``.

    Args:
      frames: ``(T, F)``, T >= num_gauss (e.g. a random subset of the data).

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


# --------------------------------------------------- posteriors and stats
def posteriors(fgmm: FullGmm, dubm: DiagGmm, x: np.ndarray, num_gselect: int = 20, min_post: float = 0.025,
               posterior_scale: float = 1.0) -> Tuple[np.ndarray, np.ndarray]:
    """Frame posteriors of the full UBM (Kaldi's gmm-gselect |
    fgmm-global-gselect-to-post --min-post | scale-post).

    The diagonal UBM selects the ``num_gselect`` best components per frame;
    the full UBM's log-likelihoods of those are normalised (softmax over the
    selected ones); posteriors below ``min_post`` are set to zero, except the
    best one of each frame, which is always kept; the rest are renormalised
    to sum to 1 and multiplied by ``posterior_scale``.

    Args:
      fgmm, dubm: full and diagonal UBMs with the same components.
      x: ``(T, F)``.

    Returns:
      ``(idx (T, K) int32, post (T, K) float64)``; each row of ``post`` sums
      to ``posterior_scale``; pruned entries are 0.

    Raises:
      ValueError: the two UBMs differ in size or dimension, or ``x`` has the
        wrong dimension.
    """
    if (fgmm.num_gauss, fgmm.dim) != (dubm.num_gauss, dubm.dim):
        raise ValueError(f"full UBM ({fgmm.num_gauss} x {fgmm.dim}) and diagonal UBM "
                         f"({dubm.num_gauss} x {dubm.dim}) do not match")
    idx = dubm.gselect(x, num_gselect)
    post, _ = _softmax_rows(fgmm.loglikes(x, idx))
    keep = post >= min_post
    keep[np.arange(post.shape[0]), post.argmax(1)] = True
    post = np.where(keep, post, 0.0)
    post *= posterior_scale / post.sum(1, keepdims=True)
    return idx, post


def _post_matrix(idx: np.ndarray, val: np.ndarray, num_gauss: int,
                 segment: Optional[np.ndarray] = None, num_segments: int = 1):
    """Sparse ``(num_segments * C, T)`` matrix of posteriors: row
    ``segment[t] * C + idx[t, k]``, column t, value ``val[t, k]``."""
    import scipy.sparse

    idx = np.asarray(idx)
    val = np.asarray(val, dtype=np.float64)
    if idx.shape != val.shape or idx.ndim != 2:
        raise ValueError(f"posterior indices {idx.shape} and values {val.shape} must be (T, K) alike")
    if idx.size and (idx.min() < 0 or idx.max() >= num_gauss):
        raise ValueError(f"posterior indices outside 0..{num_gauss - 1}")
    t, k = idx.shape
    rows = idx.astype(np.int64)
    if segment is not None:
        rows = rows + segment[:, None].astype(np.int64) * num_gauss
    cols = np.repeat(np.arange(t), k)
    return scipy.sparse.csr_matrix((val.ravel(), (rows.ravel(), cols)), shape=(num_segments * num_gauss, t))


def utterance_stats(x: np.ndarray, post_idx: np.ndarray, post_val: np.ndarray, num_gauss: int,
                    second_order: bool = False):
    """Baum-Welch statistics of one utterance (Kaldi's
    IvectorExtractorUtteranceStats; Dehak et al. 2011, eqs. 8-9, but
    uncentered).

    ``gamma_c = sum_t gamma_tc``, ``f_c = sum_t gamma_tc x_t``,
    ``S_c = sum_t gamma_tc x_t x_t^T``, computed as one sparse-dense matrix
    product each.

    Args:
      x: ``(T, F)``.
      post_idx, post_val: ``(T, K)`` from :func:`posteriors`.
      num_gauss: C.
      second_order: also return S.

    Returns:
      ``(gamma (C,), f (C, F), S (C, F, F) or None)``.

    Raises:
      ValueError: shapes that do not agree, indices out of range.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or post_idx.shape[0] != x.shape[0]:
        raise ValueError(f"features {x.shape} and posteriors {post_idx.shape} disagree in frames")
    g = _post_matrix(post_idx, post_val, num_gauss)
    gamma = np.asarray(g.sum(1)).ravel()
    f = g @ x
    s = unpack_symmetric(g @ packed_outer(x), x.shape[1]) if second_order else None
    return gamma, np.asarray(f), s


def save_selection(path: PathLike, sel: Mapping[str, Tuple[np.ndarray, Optional[np.ndarray]]]) -> None:
    """Write per-utterance Gaussian selections, and optionally posteriors, to
    one .npz (atomically): utterance ids, frame counts, concatenated
    ``(sum T, K)`` int32 indices and float32 posteriors.

    Args:
      sel: utterance -> ``(idx (T, K), post (T, K) or None)``; either every
        value has posteriors or none does.
    """
    utts = list(sel)
    k = next((v[0].shape[1] for v in sel.values()), 0)
    lengths = np.array([sel[u][0].shape[0] for u in utts], dtype=np.int64)
    idx = np.concatenate([sel[u][0] for u in utts]).astype(np.int32) if utts else np.zeros((0, k), np.int32)
    arrays = dict(utts=np.array(utts, dtype=str), lengths=lengths, idx=idx)
    if utts and sel[utts[0]][1] is not None:
        arrays["post"] = np.concatenate([sel[u][1] for u in utts]).astype(np.float32)
    _save_npz(path, "gselect", **arrays)


def load_selection(path: PathLike) -> Dict[str, Tuple[np.ndarray, Optional[np.ndarray]]]:
    """Read :func:`save_selection`'s file: utterance -> ``(idx, post or None)``."""
    d = _load_npz(path, "gselect")
    bounds = np.concatenate([[0], np.cumsum(d["lengths"])])
    post = d.get("post")
    return {str(u): (d["idx"][bounds[i]:bounds[i + 1]],
                     None if post is None else post[bounds[i]:bounds[i + 1]].astype(np.float64))
            for i, u in enumerate(d["utts"])}


# -------------------------------------------------------- i-vector extractor
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
        self.Sigma_inv = _sym(np.asarray(Sigma_inv, dtype=np.float64))
        self.w = np.asarray(w, dtype=np.float64)
        self.prior_offset = float(prior_offset)
        c, f, d = self.M.shape
        if self.Sigma_inv.shape != (c, f, f) or self.w.shape != (c,):
            raise ValueError(f"IvectorExtractor: shapes M {self.M.shape}, Sigma_inv {self.Sigma_inv.shape}, "
                             f"w {self.w.shape} do not agree")
        self._logdet_sigma = -_logdet_pd(self.Sigma_inv, "IvectorExtractor Sigma_inv")
        self.SiM = self.Sigma_inv @ self.M                      # Sigma_c^-1 M_c, (C, F, D)
        self.U = _sym(np.swapaxes(self.M, 1, 2) @ self.SiM)     # M_c^T Sigma_c^-1 M_c, (C, D, D)

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
        return _inv_pd(self.Sigma_inv)

    @classmethod
    def from_full_gmm(cls, fgmm: FullGmm, ivector_dim: int, prior_offset: float = 100.0, seed: int = 0,
                      init_scale: float = 0.1) -> "IvectorExtractor":
        """Initial extractor from a full-covariance UBM (Kaldi's
        ivector-extractor-init).

        ``M_c[:, 0] = m_c / prior_offset`` so that ``M_c mu0 = m_c``; the
        other columns are ``init_scale * chol(Sigma_c) z`` with ``z`` standard
        normal, i.e. small random directions on the scale of the UBM's
        within-Gaussian spread; ``Sigma_c`` is the UBM covariance.

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
    def _check_stats(self, gamma: np.ndarray, f: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
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
        gamma, f = self._check_stats(gamma, f)
        n, (c, fd, d) = gamma.shape[0], self.M.shape
        a = f.reshape(n, c * fd) @ self.SiM.reshape(c * fd, d)
        p = (gamma @ self.U.reshape(c, d * d)).reshape(n, d, d)
        mu0 = self.prior_mean if prior_mean is None else np.asarray(prior_mean, dtype=np.float64)
        lam0 = np.eye(d) if prior_covar is None else _inv_pd(np.asarray(prior_covar, dtype=np.float64))
        return a + lam0 @ mu0, _sym(p + lam0), mu0, lam0

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
        cov = _inv_pd(p)
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
                        period: int = 10) -> np.ndarray:
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
        x = _check_frames(x, self.feat_dim)
        t = x.shape[0]
        if t == 0 or period < 1:
            raise ValueError(f"online_ivectors: need T > 0 and period >= 1 (got T={t}, period={period})")
        k = -(-t // period)
        seg = (np.arange(t) + period - 1) // period          # 0, 1 x p, 2 x p, ...
        use = seg < k                                           # frames after the last row are unused
        c = self.num_gauss
        g = _post_matrix(post_idx[use], post_val[use], c, seg[use], k)
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
        gamma, f = self._check_stats(gamma, f)
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
        logdet_p = _logdet_pd(p, "posterior precision")
        quad = np.einsum("nd,nd->n", a, np.linalg.solve(p, a[:, :, None])[:, :, 0])
        const = gamma @ (-0.5 * (self.feat_dim * LOG_2PI + self._logdet_sigma))
        prior = 0.5 * _logdet_pd(lam0, "prior precision") - 0.5 * mu0 @ lam0 @ mu0
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
        lam, q = np.linalg.eigh(_sym(np.asarray(covar, dtype=np.float64)))
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
        _save_npz(path, self.kind, M=self.M, Sigma_inv=self.Sigma_inv, w=self.w,
                  prior_offset=np.array(self.prior_offset))

    @classmethod
    def load(cls, path: PathLike) -> "IvectorExtractor":
        """Read a file written by :meth:`save`.

        Raises:
          FileNotFoundError, ValueError: missing file, or not an extractor.
        """
        d = _load_npz(path, cls.kind)
        return cls(d["M"], d["Sigma_inv"], d["w"], float(d["prior_offset"]))


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
        gamma, f = ie._check_stats(gamma, f)
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

    def add(self, other: "IvectorExtractorAcc") -> None:
        """Add another job's statistics."""
        for name in ("gamma", "Y", "R", "S", "w_sum", "ww_sum"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.count += other.count
        self.objf += other.objf
        self.frames += other.frames

    def save(self, path: PathLike) -> None:
        """Write the statistics to an .npz, atomically."""
        _save_npz(path, self.kind, gamma=self.gamma, Y=self.Y, R=self.R, S=self.S, count=np.array(self.count),
                  w_sum=self.w_sum, ww_sum=self.ww_sum, objf=np.array(self.objf), frames=np.array(self.frames))

    @classmethod
    def load(cls, path: PathLike) -> "IvectorExtractorAcc":
        """Read :meth:`save`'s file (ValueError if it holds something else)."""
        d = _load_npz(path, cls.kind)
        acc = cls(*d["Y"].shape)
        for name in ("gamma", "Y", "R", "S", "w_sum", "ww_sum"):
            setattr(acc, name, d[name])
        acc.count, acc.objf, acc.frames = float(d["count"]), float(d["objf"]), float(d["frames"])
        return acc

    @property
    def objf_per_frame(self) -> float:
        """Accumulated log-likelihood divided by the number of frames."""
        return self.objf / max(self.frames, 1.0)

    def update(self, ie: IvectorExtractor, variance_floor_factor: float = 0.1, gaussian_min_count: float = 100.0,
               update_prior: bool = True) -> IvectorExtractor:
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
            new = _sym(num[upd] / self.gamma[upd, None, None])
            avg = np.einsum("c,cfg->fg", self.gamma[upd], new) / self.gamma[upd].sum()
            new, n_floored = floor_covariances(new, variance_floor_factor * avg)
            sigma[upd] = new
            if n_floored:
                logger.info("variance floor: %d eigenvalues floored", n_floored)
        if (~upd).any():
            logger.info("%d of %d Gaussians have counts below %g and keep their covariance",
                        int((~upd).sum()), c, gaussian_min_count)
        out = IvectorExtractor(M, _inv_pd(sigma), ie.w, ie.prior_offset)
        if update_prior:
            m = self.w_sum / self.count
            cov = self.ww_sum / self.count - np.outer(m, m)
            out = out.transform_prior(m, cov)
            logger.info("prior: |mean| %.3f, covariance eigenvalues %.3g .. %.3g, new prior offset %.3f",
                        float(np.linalg.norm(m)), *np.linalg.eigvalsh(_sym(cov))[[0, -1]], out.prior_offset)
        return out


# ------------------------------------------------------- speaker averages
def speaker_means(ivectors: Mapping[str, np.ndarray],
                  spk2utt: Mapping[str, Sequence[str]]) -> Tuple[Dict[str, np.ndarray], Dict[str, int]]:
    """Speaker i-vectors: the mean of the speaker's utterance i-vectors
    (Kaldi's ivector-mean). A speaker with a single utterance gets that
    utterance's i-vector unchanged; utterances without an i-vector (e.g.
    skipped for having no frames) are left out of the mean, and a speaker
    with none gets no entry (a warning names it).

    Returns:
      ``(speaker -> (D,) mean, speaker -> number of utterances averaged)``.
    """
    means: Dict[str, np.ndarray] = {}
    counts: Dict[str, int] = {}
    for spk, utts in spk2utt.items():
        vecs = [np.asarray(ivectors[u], dtype=np.float64) for u in utts if u in ivectors]
        if not vecs:
            logger.warning("speaker %s: none of its %d utterances has an i-vector; no speaker i-vector",
                           spk, len(utts))
            continue
        means[spk] = vecs[0].copy() if len(vecs) == 1 else np.mean(vecs, axis=0)
        counts[spk] = len(vecs)
    return means, counts


def write_objf(path: PathLike, iteration: int, objf: float) -> Optional[float]:
    """Record ``iteration objf`` in the summary file ``path`` (rewritten
    atomically, lines of later iterations dropped, so that a rerun of an
    iteration replaces its line); return the previous iteration's value, if
    recorded."""
    path = Path(path)
    lines: List[Tuple[int, float]] = []
    if path.is_file():
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and int(parts[0]) < iteration:
                lines.append((int(parts[0]), float(parts[1])))
    prev = dict(lines).get(iteration - 1)
    lines.append((iteration, objf))
    with atomic_open(path) as fh:
        for it, v in lines:
            fh.write(f"{it} {v:.6f}\n")
    return prev


def objf_line(iteration: int, objf: float, prev: Optional[float]) -> str:
    """``iteration N: log-likelihood per frame X (change +Y)`` (the change
    only when the previous iteration's value is known)."""
    change = "" if prev is None else f" (change {objf - prev:+.4f})"
    return f"iteration {iteration}: log-likelihood per frame {objf:.4f}{change}"


def write_ark_scp(ark: PathLike, scp: PathLike, items: Iterable[Tuple[str, np.ndarray]]) -> int:
    """Write Kaldi float32 vectors/matrices to ``ark`` with an index ``scp``.

    Both are written under temporary names; the ark is moved into place
    first and the scp (whose entries name the final ark, made absolute so
    the scp is valid from any directory) last, so an existing scp always
    points at a complete ark.

    Returns:
      the number of entries written.
    """
    import os

    import kaldiio

    ark, scp = Path(ark).resolve(), Path(scp)
    tmp_ark, tmp_scp = ark.with_name(ark.name + ".tmp"), scp.with_name(scp.name + ".tmp")
    ark.parent.mkdir(parents=True, exist_ok=True)
    scp.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    try:
        with kaldiio.WriteHelper(f"ark,scp:{tmp_ark},{tmp_scp}") as writer:
            for key, value in items:
                writer(key, np.asarray(value, dtype=np.float32))
                n += 1
        lines = []
        for line in tmp_scp.read_text().splitlines():
            key, spec = line.split(" ", 1)
            offset = spec.rsplit(":", 1)[1]
            lines.append(f"{key} {ark}:{offset}\n")
        os.replace(tmp_ark, ark)
        with atomic_open(scp) as f:
            f.writelines(lines)
    finally:
        for p in (tmp_ark, tmp_scp):
            if p.exists():
                p.unlink()
    return n
