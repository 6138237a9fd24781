"""The hot paths of the i-vector jobs in PyTorch, on CPU or a CUDA GPU.

The same computations as the numpy modules, in float64 on ``device``:

* :class:`TorchUbm`: Gaussian selection with the diagonal UBM and frame
  posteriors of the full UBM (:meth:`DiagGmm.gselect`,
  :func:`~mtlasr.ivector.posteriors.posteriors`);
* :func:`utterance_stats`, :func:`segment_stats`: Baum-Welch statistics
  (:func:`~mtlasr.ivector.posteriors.utterance_stats`; Dehak et al. 2011,
  eqs. 8-9, uncentered), in :mod:`mtlasr.ivector.torch_stats` with the
  sums in numpy's order;
* :class:`TorchExtractor`: the posterior of w and the i-vectors, per
  utterance and online (:meth:`IvectorExtractor.posterior`, ``extract``,
  ``online_ivectors``; Kenny, Boulianne and Dumouchel 2005, Proposition 1);
* :class:`TorchExtractorAcc`: the extractor's E-step statistics
  (:meth:`IvectorExtractorAcc.accumulate`).

The models' parameters and derived terms (log-likelihood constants,
``Sigma_c^-1 M_c``, ``U_c``) are computed by the numpy classes and copied,
so both paths start from the same bits. The M-steps stay in numpy.

What is equal to the numpy path on CPU, and what is not (tests in
tests/test_ivector_torch.py):

* bit for bit (``np.array_equal``), given the same posteriors:
  the statistics ``gamma``, ``f`` and ``S`` of an utterance, the per-period
  statistics of the online i-vectors and their cumulative sums, and the
  accumulator's ``gamma``, ``S``, ``count`` and ``frames``. scipy's sparse
  product sums ``post_tc x_t`` for each Gaussian over t in order, starting
  from 0, and so does :meth:`torch.Tensor.index_add_` here; ``gamma`` is
  scipy's row sum, ``np.add.reduceat``, i.e. the first entry plus numpy's
  pairwise sum of the others (8 interleaved partial sums in blocks of up to
  128, halves above), which :func:`segment_sums` reproduces. Sums over the
  utterances of a batch are sequential in both (``np.sum(axis=0)`` over rows;
  ``torch.cumsum`` here, as ``torch.sum`` blocks differently).
* to about 1e-15, and within 1e-12 relative (max abs difference over max
  abs value) in the tests: everything that goes through a dense matrix
  product, a factorisation or ``exp``: the UBM log-likelihoods and hence the
  posteriors; ``a = sum_c M_c^T Sigma_c^-1 f_c``, the precision ``P``, the
  posterior mean and covariance, the i-vectors (per utterance and online),
  the accumulator's ``Y``, ``R``, ``w_sum``, ``ww_sum`` and objective.
  numpy's products run in OpenBLAS and its factorisations in OpenBLAS's
  LAPACK, torch's in MKL (on CPU) or cuBLAS/cuSOLVER: each library blocks
  the k-sum of a product and the elimination differently, so the last bits
  differ, and no choice of calls here can fix another library's order.
  Selections (indices) are the same unless two log-likelihoods are within
  ~1e-15 relative of each other (a tie), and pruning at ``min_post`` the
  same unless a posterior is within as much of the threshold. An i-vector
  is the posterior mean minus the prior offset (100 by default) in element
  0, so its error is about 1e-16 of the offset, not of the i-vector:
  relative to small i-vectors it is larger (5e-13 for a fresh 400-dim
  extractor in local/benchmark_ivector_torch.py).

On a GPU the statistics are dense products (the posteriors scattered into
a ``(T, C)`` matrix), deterministic and within the same 1e-12 of numpy;
``index_add_`` on CUDA adds with atomics, in no fixed order. Set the method
explicitly (``method="exact"`` or ``"dense"``) to run either on either
device. (That ``index_add_`` on CPU adds in index order, with any number of
threads, is torch's behaviour, not its documented contract: the tests check
it.)

Notation as in :mod:`mtlasr.ivector`: T frames, F feature dimension, C
Gaussians, K selected Gaussians per frame, D i-vector dimension, N
utterances in a batch, P = F (F + 1) / 2.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch

from .extractor import IvectorExtractor
from .extractor_acc import IvectorExtractorAcc
from .gmm import DiagGmm, FullGmm
from .linalg import CHUNK, LOG_2PI
from .torch_stats import (DTYPE, METHODS, Tensor, as_tensor, default_method, packed_outer,  # noqa: F401
                          segment_stats, segment_sums, sum_rows, sym, to_numpy, utterance_stats)

DEVICES = ("auto", "cpu", "cuda")
GATHER_BLOCK = 4_000_000      # float64 of gathered full-covariance terms per block (as FullGmm.loglikes)


def resolve_device(name: str) -> torch.device:
    """The device for ``name``: ``auto`` (the GPU if torch sees one, else
    the CPU), ``cpu``, ``cuda`` or ``cuda:N``.

    Raises:
      ValueError: another name, or a GPU asked for where torch sees none.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ValueError(f"device {name}: torch sees no CUDA GPU (use --device cpu or auto)")
        return torch.device(name)
    raise ValueError(f"unknown device '{name}' (one of {', '.join(DEVICES)}, or cuda:N)")


# ------------------------------------------------------------------ UBMs
class TorchUbm:
    """Gaussian selection and frame posteriors (:meth:`DiagGmm.gselect`,
    :func:`mtlasr.ivector.posteriors.posteriors`) on a device.

    Args:
      dubm: the diagonal UBM (selects).
      fgmm: the full UBM with the same components (posteriors), or None.
      device: where to compute.

    Attributes:
      gather: compute the full UBM's log-likelihoods of the selected
        components only when C > 16 K (as numpy does), rather than of all
        by one product; True on CPU, False on a GPU, where the product is
        faster.

    Raises (constructor):
      ValueError: the two UBMs differ in size or dimension.
    """

    def __init__(self, dubm: DiagGmm, fgmm: Optional[FullGmm], device: torch.device):
        if fgmm is not None and (fgmm.num_gauss, fgmm.dim) != (dubm.num_gauss, dubm.dim):
            raise ValueError(f"full UBM ({fgmm.num_gauss} x {fgmm.dim}) and diagonal UBM "
                             f"({dubm.num_gauss} x {dubm.dim}) do not match")
        self.device = device
        self.gather = device.type == "cpu"
        self.num_gauss, self.dim = dubm.num_gauss, dubm.dim
        self._diag = tuple(as_tensor(a, device) for a in dubm.loglike_terms())
        self._full = None if fgmm is None else tuple(as_tensor(a, device) for a in fgmm.loglike_terms())

    def _frames(self, x) -> Tensor:
        x = as_tensor(x, self.device)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"features: expected shape (T, {self.dim}), got {tuple(x.shape)}")
        return x

    def gselect(self, x, num_gselect: int) -> Tensor:
        """The ``num_gselect`` best components of each frame under the
        diagonal UBM, best first (``torch.topk``; ties, which numpy's stable
        sort breaks by index, in no set order).

        Args:
          x: ``(T, F)``.

        Returns:
          ``(T, K)`` int64, K = min(num_gselect, C).
        """
        x = self._frames(x)
        gconst, lin, quad = self._diag
        k = min(int(num_gselect), self.num_gauss)
        out = torch.empty((x.shape[0], k), dtype=torch.int64, device=self.device)
        for s in range(0, x.shape[0], CHUNK):
            xc = x[s:s + CHUNK]
            ll = gconst + xc @ lin + (xc * xc) @ quad
            out[s:s + CHUNK] = torch.topk(ll, k, dim=1, sorted=True).indices
        return out

    def full_loglikes(self, x, gselect: Tensor) -> Tensor:
        """``log(w_c N(x_t; mu_c, Sigma_c))`` of the selected components
        (:meth:`FullGmm.loglikes`): with :attr:`gather` and C > 16 K only the
        selected pairs (gathered parameters), otherwise all components by
        one product.

        Returns:
          ``(T, K)``.
        """
        if self._full is None:
            raise ValueError("TorchUbm: no full UBM given")
        x = self._frames(x)
        gconst, lin, quad = self._full
        k = gselect.shape[1]
        gather = self.gather and self.num_gauss > 16 * k
        step = max(1, GATHER_BLOCK // max(1, k * quad.shape[1])) if gather else CHUNK
        out = x.new_empty(x.shape[0], k)
        for s in range(0, x.shape[0], step):
            xc, g = x[s:s + step], gselect[s:s + step]
            xx = packed_outer(xc)
            if gather:
                out[s:s + step] = (gconst[g] + (lin[g] @ xc[:, :, None])[:, :, 0]
                                   + (quad[g] @ xx[:, :, None])[:, :, 0])
            else:
                out[s:s + step] = torch.gather(gconst + xc @ lin.T + xx @ quad.T, 1, g)
        return out

    def posteriors(self, x, num_gselect: int, min_post: float, posterior_scale: float) -> Tuple[Tensor, Tensor]:
        """Frame posteriors of the full UBM over the diagonal UBM's
        selection, pruned and scaled, as
        :func:`mtlasr.ivector.posteriors.posteriors`.

        Returns:
          ``(idx (T, K) int64, post (T, K) float64)``, rows of ``post``
          summing to ``posterior_scale``.
        """
        x = self._frames(x)
        idx = self.gselect(x, num_gselect)
        ll = self.full_loglikes(x, idx)
        p = torch.exp(ll - ll.max(1, keepdim=True).values)
        post = p / p.sum(1, keepdim=True)
        keep = post >= min_post
        keep[torch.arange(post.shape[0], device=self.device), post.argmax(1)] = True
        post = torch.where(keep, post, torch.zeros_like(post))
        post = post * (posterior_scale / post.sum(1, keepdim=True))
        return idx, post


# ------------------------------------------------------------ extractor
class TorchExtractor:
    """The posterior of w, i-vectors and the log-likelihood of
    :class:`IvectorExtractor` on a device (its formulas and references).

    Args:
      ie: the extractor (its ``SiM``, ``U`` and constants are copied).
      device: where to compute.
      method: of the online statistics (:func:`segment_stats`); default
        :func:`default_method`.
    """

    def __init__(self, ie: IvectorExtractor, device: torch.device, method: Optional[str] = None):
        c, f, d = ie.M.shape
        self.ie = ie
        self.device = device
        self.method = method or default_method(device)
        self.SiM = as_tensor(ie.SiM.reshape(c * f, d), device)        # Sigma_c^-1 M_c, stacked (C F, D)
        self.U = as_tensor(ie.U.reshape(c, d * d), device)             # M_c^T Sigma_c^-1 M_c, (C, D D)
        self.Sigma_inv = as_tensor(ie.Sigma_inv, device)
        self.mu0 = as_tensor(ie.prior_mean, device)
        self.eye = torch.eye(d, dtype=DTYPE, device=device)
        # -0.5 (F log 2pi + log|Sigma_c|) per Gaussian (C,), as IvectorExtractor._loglike_w_terms
        self.gconst = as_tensor(-0.5 * (f * LOG_2PI + ie._logdet_sigma), device)

    def stats(self, gamma, f) -> Tuple[Tensor, Tensor]:
        """``(gamma (N, C), f (N, C, F))`` as tensors on the device.

        Raises:
          ValueError: other shapes.
        """
        gamma, f = as_tensor(gamma, self.device), as_tensor(f, self.device)
        c, fd = self.ie.num_gauss, self.ie.feat_dim
        if gamma.ndim != 2 or gamma.shape[1] != c or tuple(f.shape) != (gamma.shape[0], c, fd):
            raise ValueError(f"statistics of shapes gamma {tuple(gamma.shape)}, f {tuple(f.shape)}; expected "
                             f"(N, {c}) and (N, {c}, {fd})")
        return gamma, f

    def _factor(self, gamma: Tensor, f: Tensor):
        """``a (N, D)``, the Cholesky factor of ``P`` (N, D, D) and
        ``P^-1 a`` (N, D): ``a = sum_c M_c^T Sigma_c^-1 f_c + mu0``,
        ``P = I + sum_c gamma_c U_c``, symmetrised (the model's prior). One
        factorisation serves the mean, the covariance and the
        log-likelihood (numpy's path solves and inverts by LU apart).

        Raises:
          ValueError: a P that is not positive definite.
        """
        n, d = gamma.shape[0], self.eye.shape[0]
        a = f.reshape(n, -1) @ self.SiM + self.mu0
        p = sym((gamma @ self.U).reshape(n, d, d) + self.eye)
        chol, info = torch.linalg.cholesky_ex(p)
        if bool((info > 0).any()):
            raise ValueError("posterior precision is not positive definite")
        return a, chol, torch.cholesky_solve(a[:, :, None], chol)[:, :, 0]

    def posterior(self, gamma, f) -> Tuple[Tensor, Tensor]:
        """Posterior of w (:meth:`IvectorExtractor.posterior`): ``mean =
        P^-1 a`` (N, D), ``cov = P^-1`` (N, D, D), symmetrised."""
        gamma, f = self.stats(gamma, f)
        _, chol, mean = self._factor(gamma, f)
        return mean, sym(torch.cholesky_inverse(chol))

    def _log_likelihood(self, gamma: Tensor, a: Tensor, chol: Tensor, mean: Tensor, S_sum: Tensor) -> float:
        """The batch's log-likelihood from :meth:`_factor`'s terms (see
        :meth:`total_log_likelihood`)."""
        logdet_p = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        quad = (a * mean).sum(1)
        w_terms = gamma @ self.gconst - 0.5 * (self.mu0 @ self.mu0) - 0.5 * logdet_p + 0.5 * quad
        return float(w_terms.sum() - 0.5 * (self.Sigma_inv * S_sum).sum())

    def extract(self, gamma, f) -> Tensor:
        """I-vectors (N, D): the posterior mean minus ``prior_offset`` in
        element 0 (:meth:`IvectorExtractor.extract`)."""
        gamma, f = self.stats(gamma, f)
        mean = self._factor(gamma, f)[2]
        mean[:, 0] -= self.ie.prior_offset
        return mean

    def online_ivectors(self, x, idx, post, period: int) -> Tensor:
        """I-vectors every ``period`` frames (:meth:`IvectorExtractor.online_ivectors`):
        row k from the statistics of frames ``0 .. k * period``.

        Returns:
          ``(ceil(T / period), D)``.

        Raises:
          ValueError: T == 0, period < 1, or shapes that disagree.
        """
        x = as_tensor(x, self.device)
        if x.ndim != 2 or x.shape[1] != self.ie.feat_dim:
            raise ValueError(f"features: expected shape (T, {self.ie.feat_dim}), got {tuple(x.shape)}")
        if x.shape[0] == 0 or period < 1:
            raise ValueError(f"online_ivectors: need T > 0 and period >= 1 (got T={x.shape[0]}, period={period})")
        idx, post = as_tensor(idx, self.device, torch.int64), as_tensor(post, self.device)
        gamma, f = segment_stats(x, idx, post, self.ie.num_gauss, period, self.method)
        return self.extract(torch.cumsum(gamma, 0), torch.cumsum(f, 0))

    def total_log_likelihood(self, gamma, f, S_sum) -> float:
        """:meth:`IvectorExtractor.total_log_likelihood`: the batch's
        marginal log-likelihood (nats), w integrated out,
        ``sum_n [gamma_n . gconst - 0.5 log|P_n| + 0.5 a_n^T P_n^-1 a_n
        - 0.5 mu0^T mu0] - 0.5 sum_c tr(Sigma_c^-1 S_c)``."""
        gamma, f = self.stats(gamma, f)
        return self._log_likelihood(gamma, *self._factor(gamma, f), as_tensor(S_sum, self.device))


class TorchExtractorAcc:
    """The E-step statistics of :class:`IvectorExtractorAcc` on a device
    (its formulas: Kenny et al. 2005; Kaldi IvectorExtractorStats without
    weight statistics); :meth:`to_numpy` gives the numpy accumulator that
    the M-step and the files use.

    Args:
      ie: the extractor on the device.
    """

    def __init__(self, ie: TorchExtractor):
        c, f, d = ie.ie.M.shape
        z = lambda *shape: torch.zeros(shape, dtype=DTYPE, device=ie.device)  # noqa: E731
        self.gamma, self.Y, self.R, self.S = z(c), z(c, f, d), z(c, d, d), z(c, f, f)
        self.w_sum, self.ww_sum = z(d), z(d, d)
        self.count = self.objf = self.frames = 0.0

    def accumulate(self, ie: TorchExtractor, gamma, f, S_sum, num_frames: float) -> float:
        """E-step for a batch (:meth:`IvectorExtractorAcc.accumulate`).

        Args:
          ie: the current extractor on the device.
          gamma: ``(N, C)``; f: ``(N, C, F)``; S_sum: ``(C, F, F)``;
          num_frames: frames in the batch.

        Returns:
          the batch's total log-likelihood (nats).
        """
        gamma, f = ie.stats(gamma, f)
        S_sum = as_tensor(S_sum, ie.device)
        n, (c, fd, d) = gamma.shape[0], ie.ie.M.shape
        a, chol, mean = ie._factor(gamma, f)
        eww = sym(torch.cholesky_inverse(chol)) + mean[:, :, None] * mean[:, None, :]
        self.Y += (f.reshape(n, c * fd).T @ mean).reshape(c, fd, d)
        self.R += (gamma.T @ eww.reshape(n, d * d)).reshape(c, d, d)
        self.gamma += sum_rows(gamma)
        self.S += S_sum
        self.count += n
        self.w_sum += sum_rows(mean)
        self.ww_sum += sum_rows(eww)
        ll = ie._log_likelihood(gamma, a, chol, mean, S_sum)
        self.objf += ll
        self.frames += num_frames
        return ll

    def to_numpy(self) -> IvectorExtractorAcc:
        """The statistics as an :class:`IvectorExtractorAcc` (CPU, numpy)."""
        c, f, d = self.Y.shape
        acc = IvectorExtractorAcc(c, f, d)
        for name in ("gamma", "Y", "R", "S", "w_sum", "ww_sum"):
            setattr(acc, name, to_numpy(getattr(self, name)))
        acc.count, acc.objf, acc.frames = self.count, self.objf, self.frames
        return acc
