"""Baum-Welch statistics in PyTorch, and sums in numpy's order: the
statistics part of :mod:`mtlasr.ivector.torch_backend`, whose docstring
says what is bit for bit numpy's and why.

* :func:`utterance_stats`, :func:`segment_stats`: ``gamma_c = sum_t
  gamma_tc``, ``f_c = sum_t gamma_tc x_t``, ``S_c = sum_t gamma_tc x_t
  x_t^T`` of an utterance or of the segments of the online i-vectors
  (:func:`mtlasr.ivector.posteriors.utterance_stats`; Dehak et al. 2011,
  eqs. 8-9, uncentered), by the ``exact`` method (scipy's order of
  summation, bit for bit on CPU) or the ``dense`` one (products with the
  ``(T, C)`` posteriors; deterministic on a GPU);
* :func:`pairwise_sums`, :func:`segment_sums`, :func:`sum_rows`: numpy's
  summation orders, reproduced;
* tensor helpers shared with the models (:func:`as_tensor`,
  :func:`to_numpy`, :func:`sym`, packed outer products).

Notation: T frames, F feature dimension, C Gaussians, K selected Gaussians
per frame, P = F (F + 1) / 2. Everything is float64.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch

from .linalg import CHUNK

DTYPE = torch.float64
METHODS = ("exact", "dense")
PW_BLOCKSIZE = 128            # numpy's pairwise-summation block (loops_utils.h.src)
PRODUCT_BLOCK = 1 << 22       # float64 per block of per-entry products in the exact statistics (32 MB)

Tensor = torch.Tensor


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
