"""Speaker-verification scoring of embeddings (i-vectors): cosine scores,
trial lists and the equal error rate; speaker averages of embeddings.

Cosine scoring of i-vectors: Dehak et al., "Front-end factor analysis for
speaker verification", IEEE TASLP 19(4), 2011, eq. 11 (here after
subtracting the mean of a background set, and without WCCN/LDA).
"""

from __future__ import annotations

import logging
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

logger = logging.getLogger(__name__)


def length_normalise(x: np.ndarray, mean: Optional[np.ndarray] = None) -> np.ndarray:
    """Rows of ``x (N, D)`` minus ``mean (D,)`` (if given), scaled to unit norm.

    Raises: ValueError if a row is (after centring) all zero.
    """
    x = np.asarray(x, dtype=np.float64)
    if mean is not None:
        x = x - mean
    n = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(n == 0):
        raise ValueError(f"row {int(np.argmin(n[:, 0]))} has zero norm; cannot length-normalise")
    return x / n


def cosine_scores(x: np.ndarray, y: np.ndarray, mean: Optional[np.ndarray] = None) -> np.ndarray:
    """Cosine similarity of every row of ``x (N, D)`` with every row of ``y (M, D)``: ``(N, M)``.

    score(a, b) = <a - m, b - m> / (||a - m|| ||b - m||) with ``m = mean``
    (Dehak et al. 2011, eq. 11).
    """
    return length_normalise(x, mean) @ length_normalise(y, mean).T


def all_pair_trials(utts: Sequence[str], utt2spk: Mapping[str, str]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every unordered pair of distinct utterances as a trial.

    Returns ``(i, j, target)``: index arrays ``(P,) int`` into ``utts`` with
    i < j, and ``(P,) bool``, True where both utterances have the same speaker.

    Raises: KeyError naming an utterance without a speaker.
    """
    for u in utts:
        if u not in utt2spk:
            raise KeyError(f"utterance {u} has no speaker in utt2spk")
    spk = np.array([utt2spk[u] for u in utts])
    i, j = np.triu_indices(len(utts), k=1)
    return i, j, spk[i] == spk[j]


LABELS = {"1": True, "target": True, "0": False, "nontarget": False}


def read_trials(path, known) -> Tuple[List[Tuple[str, str]], np.ndarray]:
    """A trial list: one trial per line, ``<label> <utt1> <utt2>`` (VoxCeleb's
    order, label 1/0) or ``<utt1> <utt2> <label>`` (Kaldi's, label
    target/nontarget); blank lines and ``#`` comments are skipped.

    Args: path: the file; known: the utterances that have embeddings.
    Returns: ``([(utt1, utt2), ...], (P,) bool target)``.
    Raises:
      FileNotFoundError: no such file.
      ValueError: a malformed line (naming file and line), trials that name
        utterances without an embedding (the count and the first, with its
        line), or a list without target or without non-target trials.
    """
    from pathlib import Path

    pairs: List[Tuple[str, str]] = []
    target: List[bool] = []
    unknown: List[Tuple[int, str]] = []
    text = Path(path).read_text(encoding="utf-8")
    for n, line in enumerate(text.splitlines(), 1):
        f = line.split("#", 1)[0].split()
        if not f:
            continue
        if len(f) == 3 and f[0] in LABELS and f[2] not in LABELS:
            lab, a, b = f
        elif len(f) == 3 and f[2] in LABELS:
            a, b, lab = f
        else:
            raise ValueError(f"{path}:{n}: not '<1|0> <utt1> <utt2>' or '<utt1> <utt2> <target|nontarget>': "
                             f"{line.strip()!r}")
        for u in (a, b):
            if u not in known:
                unknown.append((n, u))
        pairs.append((a, b))
        target.append(LABELS[lab])
    if unknown:
        n, u = unknown[0]
        raise ValueError(f"{path}: {len(unknown)} trial sides name utterances without an embedding, "
                         f"e.g. {u} (line {n})")
    t = np.array(target, dtype=bool)
    if not t.any() or t.all():
        raise ValueError(f"{path}: needs target and non-target trials (has {int(t.sum())} and {int((~t).sum())})")
    return pairs, t


def compute_eer(scores: np.ndarray, target: np.ndarray) -> Tuple[float, float]:
    """Equal error rate of verification scores (higher = more likely the same speaker).

    Sweeps the threshold over the sorted scores; the miss rate P_miss(t)
    (targets scored below t) rises and the false-alarm rate P_fa(t)
    (non-targets at or above t) falls; the EER is where they cross, by
    linear interpolation between the two neighbouring thresholds.

    Args: scores ``(P,)`` float, target ``(P,)`` bool.
    Returns: (EER as a fraction in [0, 1], the threshold there).
    Raises: ValueError if there are no target or no non-target trials.
    """
    scores = np.asarray(scores, dtype=np.float64)
    target = np.asarray(target, dtype=bool)
    nt, nn = int(target.sum()), int((~target).sum())
    if nt == 0 or nn == 0:
        raise ValueError(f"need target and non-target trials (have {nt} and {nn})")
    order = np.argsort(scores, kind="mergesort")
    s, t = scores[order], target[order]
    # threshold just above the k-th sorted score: k+1 trials rejected
    p_miss = np.concatenate([[0.0], np.cumsum(t) / nt])
    p_fa = np.concatenate([[1.0], 1.0 - np.cumsum(~t) / nn])
    thr = np.concatenate([[s[0] - 1e-9], s])
    k = int(np.argmax(p_miss >= p_fa))  # first index where the curves have crossed (k >= 1)
    d0 = p_fa[k - 1] - p_miss[k - 1]
    d1 = p_miss[k] - p_fa[k]
    a = d0 / (d0 + d1) if d0 + d1 > 0 else 0.0
    eer = p_miss[k - 1] + a * (p_miss[k] - p_miss[k - 1])
    return float(eer), float(thr[k - 1] + a * (thr[k] - thr[k - 1]))


def speaker_means(vectors: Mapping[str, np.ndarray], utt2spk: Mapping[str, str],
                  speakers: Optional[Sequence[str]] = None) -> Tuple[Dict[str, np.ndarray], Dict[str, int]]:
    """Mean vector of each speaker's utterances and the number of utterances
    averaged (Kaldi's ivector-mean).

    Sums are float64, in the order of ``vectors``; a speaker with a single
    utterance gets that utterance's vector unchanged.

    Args:
      vectors: utterance -> ``(D,)``.
      utt2spk: utterance -> speaker, for every utterance of ``vectors``.
      speakers: the speakers wanted, in output order (e.g. those of
        spk2utt): one without any vector (its utterances skipped, e.g. for
        having no frames) gets no entry, and a warning names it. Default:
        every speaker with a vector, in order of first appearance.

    Returns:
      ``(speaker -> (D,) float32 mean, speaker -> number of utterances)``.

    Raises:
      KeyError: an utterance of ``vectors`` without a speaker, naming it.
    """
    sums: Dict[str, np.ndarray] = {}
    counts: Dict[str, int] = {}
    for u, v in vectors.items():
        if u not in utt2spk:
            raise KeyError(f"utterance {u} has no speaker in utt2spk")
        s = utt2spk[u]
        sums[s] = sums.get(s, 0) + np.asarray(v, dtype=np.float64)
        counts[s] = counts.get(s, 0) + 1
    for s in [] if speakers is None else speakers:
        if s not in sums:
            logger.warning("speaker %s: none of its %d utterances has an i-vector; no speaker i-vector",
                           s, sum(1 for spk in utt2spk.values() if spk == s))
    order = sums if speakers is None else [s for s in speakers if s in sums]
    return ({s: (sums[s] / counts[s]).astype(np.float32) for s in order},
            {s: counts[s] for s in order})


def trial_table(utts: List[str], i: np.ndarray, j: np.ndarray, scores: np.ndarray, target: np.ndarray) -> List[str]:
    """Lines ``utt1 utt2 score target|nontarget`` (Kaldi's trials + scores layout)."""
    return [f"{utts[a]} {utts[b]} {sc:.6f} {'target' if t else 'nontarget'}"
            for a, b, sc, t in zip(i, j, scores, target)]
