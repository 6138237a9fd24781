"""Frame posteriors of the UBM, Baum-Welch statistics, and the per-job files
of Gaussian selections and posteriors.

:func:`posteriors` is Kaldi's gmm-gselect | fgmm-global-gselect-to-post
--min-post | scale-post; :func:`utterance_stats` is Kaldi's
IvectorExtractorUtteranceStats (Dehak et al. 2011, eqs. 8-9, uncentered).
A job's selections (``gselect.N.npz``, indices only) or posteriors
(``post.N.npz``, indices and values) are one .npz per job
(:func:`save_selection`), read back whole (:func:`load_selection`) and
looked up per utterance with :class:`SelectionFile`.

Notation: T frames, F feature dimension, C Gaussians, K selected Gaussians
per frame.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Tuple

import numpy as np

from ..datadir import PathLike
from .gmm import DiagGmm, FullGmm
from .linalg import packed_outer, softmax_rows, unpack_symmetric
from .npz import load_npz, save_npz


def posteriors(fgmm: FullGmm, dubm: DiagGmm, x: np.ndarray, num_gselect: int, min_post: float,
               posterior_scale: float) -> Tuple[np.ndarray, np.ndarray]:
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
    post, _ = softmax_rows(fgmm.loglikes(x, idx))
    keep = post >= min_post
    keep[np.arange(post.shape[0]), post.argmax(1)] = True
    post = np.where(keep, post, 0.0)
    post *= posterior_scale / post.sum(1, keepdims=True)
    return idx, post


def post_matrix(idx: np.ndarray, val: np.ndarray, num_gauss: int,
                segment: Optional[np.ndarray] = None, num_segments: int = 1):
    """Sparse ``(num_segments * C, T)`` matrix of posteriors: row
    ``segment[t] * C + idx[t, k]``, column t, value ``val[t, k]`` (so that
    one product with the frames sums statistics per segment).

    Raises:
      ValueError: ``idx`` and ``val`` not alike ``(T, K)``, indices outside
        ``0 .. C - 1``.
    """
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
    g = post_matrix(post_idx, post_val, num_gauss)
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
    save_npz(path, "gselect", **arrays)


def load_selection(path: PathLike) -> Dict[str, Tuple[np.ndarray, Optional[np.ndarray]]]:
    """Read :func:`save_selection`'s file: utterance -> ``(idx, post or None)``."""
    d = load_npz(path, "gselect")
    bounds = np.concatenate([[0], np.cumsum(d["lengths"])])
    post = d.get("post")
    return {str(u): (d["idx"][bounds[i]:bounds[i + 1]],
                     None if post is None else post[bounds[i]:bounds[i + 1]].astype(np.float64))
            for i, u in enumerate(d["utts"])}


class SelectionFile:
    """A job's Gaussian selections or posteriors (:func:`save_selection`),
    looked up per utterance with errors that name the file.

    Args:
      path: the .npz.
      posteriors: the file must hold posteriors (``post.N.npz``), not only
        selections (``gselect.N.npz``).

    Raises (constructor):
      FileNotFoundError, ValueError: missing file, or another kind of file.
    """

    def __init__(self, path: PathLike, posteriors: bool = False):
        self.path = path
        self.posteriors = posteriors
        self.table = load_selection(path)

    def lookup(self, utt: str, num_frames: int) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """``(idx (T, K), post (T, K) or None)`` of utterance ``utt``.

        Raises:
          KeyError: the utterance is not in the file (or has no posteriors
            where they are needed).
          ValueError: its frame count is not ``num_frames``.
        """
        what = "posteriors" if self.posteriors else "Gaussian selection"
        if utt not in self.table or (self.posteriors and self.table[utt][1] is None):
            raise KeyError(f"{self.path}: no {what} for utterance {utt}")
        idx, post = self.table[utt]
        if idx.shape[0] != num_frames:
            raise ValueError(f"utterance {utt}: {num_frames} frames but {what} for {idx.shape[0]} ({self.path})")
        return idx, post
