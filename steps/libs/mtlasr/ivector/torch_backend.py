"""The hot paths of the i-vector jobs in PyTorch, on CPU or a CUDA GPU.

The same computations as the numpy modules, in float64 on ``device``:

* :class:`TorchUbm`: Gaussian selection with the diagonal UBM and frame
  posteriors of the full UBM (:meth:`DiagGmm.gselect`,
  :func:`~mtlasr.ivector.posteriors.posteriors`);
* :func:`utterance_stats`, :func:`segment_stats`: Baum-Welch statistics
  (:func:`~mtlasr.ivector.posteriors.utterance_stats`; Dehak et al. 2011,
  eqs. 8-9, uncentered);
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

import numpy as np
import torch

from .extractor import IvectorExtractor
from .extractor_acc import IvectorExtractorAcc
from .gmm import DiagGmm, FullGmm
from .linalg import CHUNK, LOG_2PI

DTYPE = torch.float64
DEVICES = ("auto", "cpu", "cuda")
METHODS = ("exact", "dense")
PW_BLOCKSIZE = 128            # numpy's pairwise-summation block (loops_utils.h.src)
PRODUCT_BLOCK = 1 << 22       # float64 per block of per-entry products in the exact statistics (32 MB)
GATHER_BLOCK = 4_000_000      # float64 of gathered full-covariance terms per block (as FullGmm.loglikes)

Tensor = torch.Tensor


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


def default_method(device: torch.device) -> str:
    """``exact`` on CPU, ``dense`` on a GPU (see the module docstring)."""
    return "exact" if device.type == "cpu" else "dense"


def as_tensor(a, device: torch.device, dtype: torch.dtype = DTYPE) -> Tensor:
    """``a`` (numpy array or tensor) as a tensor of ``dtype`` on ``device``."""
    if isinstance(a, Tensor):
        return a.to(device=device, dtype=dtype)
    return torch.as_tensor(np.asarray(a), dtype=dtype, device=device)


def to_numpy(a) -> np.ndarray:
    """A tensor (any device) as a numpy array; numpy arrays unchanged."""
    return a.detach().cpu().numpy() if isinstance(a, Tensor) else np.asarray(a)


def sym(a: Tensor) -> Tensor:
    """``(A + A^T) / 2`` over the last two axes (as :func:`linalg.sym`)."""
    return 0.5 * (a + a.transpose(-1, -2))


def packed_outer(x: Tensor) -> Tensor:
    """``(T, F)`` to ``(T, P)``: ``x[t, i] x[t, j]`` over the pairs of
    ``np.triu_indices(F)``, in their order (as :func:`linalg.packed_outer`)."""
    i, j = (torch.as_tensor(v, device=x.device) for v in np.triu_indices(x.shape[1]))
    return x[:, i] * x[:, j]


def unpack_symmetric(p: Tensor, dim: int) -> Tensor:
    """``(..., P)`` to symmetric ``(..., F, F)`` (as :func:`linalg.unpack_symmetric`)."""
    i, j = (torch.as_tensor(v, device=p.device) for v in np.triu_indices(dim))
    out = p.new_zeros(p.shape[:-1] + (dim, dim))
    out[..., i, j] = p
    out[..., j, i] = p
    return out


# ------------------------------------------------ sums in numpy's order
def pairwise_sums(values: Tensor, starts: Tensor, lengths: Tensor) -> Tensor:
    """numpy's pairwise sum of ``values[s:s + n]`` for every segment
    ``(s, n)``, bit for bit, all segments at once.

    numpy (numpy/_core/src/umath/loops_utils.h.src, ``pairwise_sum``): n < 8
    is summed in order from 0.0; 8 <= n <= 128 in 8 interleaved partial sums
    ``r_j = a_j + a_{8+j} + ...`` over the whole blocks of 8, combined as
    ``((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))``, then the other
    n mod 8 added in order; n > 128 is split at ``n2 = n // 2`` rounded down
    to a multiple of 8 and the halves summed so. Here every step is one
    vectorised operation over the segments of one kind (short, a block, or
    split), a segment past its end left unchanged (``torch.where``).

    Args:
      values: ``(M,)``.
      starts, lengths: ``(S,)`` int64, the segments (lengths >= 0).

    Returns:
      ``(S,)``.
    """
    out = values.new_zeros(starts.shape[0])
    if starts.numel() == 0:
        return out
    last = max(values.shape[0] - 1, 0)

    def at(pos: Tensor) -> Tensor:  # values[pos], positions past the end clamped (their terms are masked)
        return values[pos.clamp(max=last)]

    short = lengths < 8
    if short.any():
        s, n = starts[short], lengths[short]
        res = values.new_zeros(s.shape[0])
        for i in range(7):
            res = torch.where(i < n, res + at(s + i), res)
        out[short] = res
    block = (lengths >= 8) & (lengths <= PW_BLOCKSIZE)
    if block.any():
        s, n = starts[block], lengths[block]
        whole = n - n % 8
        lane = torch.arange(8, device=values.device)
        r = at(s[:, None] + lane)
        for off in range(8, PW_BLOCKSIZE, 8):
            r = torch.where((off < whole)[:, None], r + at(s[:, None] + off + lane), r)
        res = ((r[:, 0] + r[:, 1]) + (r[:, 2] + r[:, 3])) + ((r[:, 4] + r[:, 5]) + (r[:, 6] + r[:, 7]))
        for i in range(7):
            res = torch.where(whole + i < n, res + at(s + whole + i), res)
        out[block] = res
    split = lengths > PW_BLOCKSIZE
    if split.any():
        s, n = starts[split], lengths[split]
        half = n // 2
        half = half - half % 8
        out[split] = pairwise_sums(values, s, half) + pairwise_sums(values, s + half, n - half)
    return out


def segment_sums(values: Tensor, rows: Tensor, num_rows: int) -> Tensor:
    """Per row, the sum of the ``values`` of its entries, in the order of
    ``np.add.reduceat`` over the row's entries taken in their order in
    ``values``: the first, plus numpy's pairwise sum of the rest
    (:func:`pairwise_sums`). This is scipy's ``csr_matrix.sum(axis=1)``
    (``numpy.add.reduceat`` over each row's stored entries) of a matrix
    built from ``(values, (rows, cols))`` with ascending cols, bit for bit.

    Args:
      values: ``(M,)``; rows: ``(M,)`` int64 in ``0 .. num_rows - 1``.

    Returns:
      ``(num_rows,)``; 0 for rows without entries.
    """
    order = torch.sort(rows, stable=True).indices
    v = values[order]
    counts = torch.bincount(rows, minlength=num_rows)
    starts = torch.cumsum(counts, 0) - counts
    out = values.new_zeros(num_rows)
    has = counts > 0
    s, n = starts[has], counts[has]
    total = v[s] if v.numel() else values.new_zeros(0)
    more = n > 1
    total[more] = total[more] + pairwise_sums(v, s[more] + 1, n[more] - 1)
    out[has] = total
    return out


def sum_rows(a: Tensor) -> Tensor:
    """``a.sum(0)`` added row after row, as numpy's ``sum(axis=0)`` of a
    C-ordered array (``torch.sum`` blocks the rows differently)."""
    return torch.cumsum(a, 0)[-1]


# ------------------------------------------------------------ statistics
def _check_posteriors(x: Tensor, idx: Tensor, post: Tensor, num_gauss: int) -> None:
    """The checks of :func:`~mtlasr.ivector.posteriors.post_matrix` and
    ``utterance_stats``: ValueError on shapes that disagree or indices out
    of range."""
    if x.ndim != 2 or idx.ndim != 2 or idx.shape[0] != x.shape[0]:
        raise ValueError(f"features {tuple(x.shape)} and posteriors {tuple(idx.shape)} disagree in frames")
    if idx.shape != post.shape:
        raise ValueError(f"posterior indices {tuple(idx.shape)} and values {tuple(post.shape)} must be (T, K) alike")
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= num_gauss):
        raise ValueError(f"posterior indices outside 0..{num_gauss - 1}")


def _exact_sums(x: Tensor, rows: Tensor, frames: Tensor, vals: Tensor, num_rows: int, second_order: bool):
    """``(gamma, f, packed S or None)`` over the entries ``(row, frame,
    value)`` in t-major order, summed as scipy does (module docstring).
    Entries with value 0 add +-0 to a sum that starts at +0 and are left
    out of f and S (the features are finite); gamma keeps them, as its
    pairwise summation order depends on how many entries a row has."""
    gamma = segment_sums(vals, rows, num_rows)
    nz = vals != 0
    rows, frames, vals = rows[nz], frames[nz], vals[nz]
    f = x.new_zeros(num_rows, x.shape[1])
    s = x.new_zeros(num_rows, x.shape[1] * (x.shape[1] + 1) // 2) if second_order else None
    width = x.shape[1] + (s.shape[1] if second_order else 0)
    step = max(1, PRODUCT_BLOCK // width)
    for b in range(0, rows.shape[0], step):
        r, t, v = rows[b:b + step], frames[b:b + step], vals[b:b + step, None]
        f.index_add_(0, r, v * x[t])
        if second_order:
            s.index_add_(0, r, v * packed_outer(x[t]))
    return gamma, f, s


def _dense_sums(x: Tensor, idx: Tensor, post: Tensor, num_gauss: int, second_order: bool):
    """``(gamma (C,), f (C, F), packed S (C, P) or None)`` from the dense
    ``(T, C)`` posteriors, in blocks of frames."""
    c = num_gauss
    gamma, f = x.new_zeros(c), x.new_zeros(c, x.shape[1])
    s = x.new_zeros(c, x.shape[1] * (x.shape[1] + 1) // 2) if second_order else None
    for b in range(0, x.shape[0], CHUNK):
        xb = x[b:b + CHUNK]
        g = x.new_zeros(xb.shape[0], c).scatter_(1, idx[b:b + CHUNK], post[b:b + CHUNK])
        gamma += g.sum(0)
        f += g.T @ xb
        if second_order:
            s += g.T @ packed_outer(xb)
    return gamma, f, s


def utterance_stats(x: Tensor, idx: Tensor, post: Tensor, num_gauss: int, second_order: bool = False,
                    method: Optional[str] = None):
    """Baum-Welch statistics of one utterance (as
    :func:`mtlasr.ivector.posteriors.utterance_stats`; Dehak et al. 2011,
    eqs. 8-9, uncentered): ``gamma_c = sum_t gamma_tc``,
    ``f_c = sum_t gamma_tc x_t``, ``S_c = sum_t gamma_tc x_t x_t^T``.

    Args:
      x: ``(T, F)`` float64, finite.
      idx, post: ``(T, K)`` int64 / float64 posteriors, distinct indices per
        frame; all on x's device.
      num_gauss: C.
      second_order: also S.
      method: ``exact`` (bit for bit the numpy path's, see the module
        docstring) or ``dense``; default :func:`default_method`.

    Returns:
      ``(gamma (C,), f (C, F), S (C, F, F) or None)``.

    Raises:
      ValueError: shapes that disagree, indices out of range, unknown method.
    """
    _check_posteriors(x, idx, post, num_gauss)
    method = method or default_method(x.device)
    if method == "exact":
        t, k = idx.shape
        frames = torch.arange(t, device=x.device).repeat_interleave(k)
        gamma, f, s = _exact_sums(x, idx.reshape(-1), frames, post.reshape(-1), num_gauss, second_order)
    elif method == "dense":
        gamma, f, s = _dense_sums(x, idx, post, num_gauss, second_order)
    else:
        raise ValueError(f"unknown statistics method '{method}' (one of {', '.join(METHODS)})")
    return gamma, f, unpack_symmetric(s, x.shape[1]) if second_order else None


def segment_stats(x: Tensor, idx: Tensor, post: Tensor, num_gauss: int, period: int,
                  method: Optional[str] = None) -> Tuple[Tensor, Tensor]:
    """Statistics of the segments ``{0}, (0, p], (p, 2p], ...`` of one
    utterance (``p = period``), whose cumulative sums are the statistics of
    the online i-vectors (:meth:`IvectorExtractor.online_ivectors`).

    Args: as :func:`utterance_stats`; period >= 1, T > 0.

    Returns:
      ``(gamma (k, C), f (k, C, F))``, ``k = ceil(T / period)``; frames
      after frame ``(k - 1) * period`` belong to no segment.
    """
    _check_posteriors(x, idx, post, num_gauss)
    method = method or default_method(x.device)
    t, kk = idx.shape
    k = -(-t // period)
    c, fd = num_gauss, x.shape[1]
    seg = (torch.arange(t, device=x.device) + period - 1) // period
    use = seg < k
    x, idx, post, seg = x[use], idx[use], post[use], seg[use]
    if method == "exact":
        rows = (idx + seg[:, None] * c).reshape(-1)
        frames = torch.arange(x.shape[0], device=x.device).repeat_interleave(kk)
        gamma, f, _ = _exact_sums(x, rows, frames, post.reshape(-1), k * c, False)
        return gamma.reshape(k, c), f.reshape(k, c, fd)
    if method != "dense":
        raise ValueError(f"unknown statistics method '{method}' (one of {', '.join(METHODS)})")
    # Frames laid out as (k, period): frame t at row seg(t), column (t + period - 1) % period; padding is 0.
    slot = seg * period + (torch.arange(x.shape[0], device=x.device) + period - 1) % period
    g = x.new_zeros(k * period, c)
    g[slot] = x.new_zeros(x.shape[0], c).scatter_(1, idx, post)
    xs = x.new_zeros(k * period, fd)
    xs[slot] = x
    g, xs = g.reshape(k, period, c), xs.reshape(k, period, fd)
    return g.sum(1), g.transpose(1, 2) @ xs


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
