"""Paired bootstrap comparison of two recognisers scored on the same utterances.

Method: Bisani and Ney (2004), "Bootstrap estimates for confidence intervals
in ASR performance evaluation", ICASSP. The test set's U utterances are the
sampling units. Utterance i has N_i reference tokens and e_i^A, e_i^B errors
(S + D + I) under systems A and B. One bootstrap resample b draws U
utterance indices i_1..i_U uniformly with replacement; the same indices are
used for both systems (the *paired* bootstrap). With

    N*_b = sum_k N_{i_k},   E*_{A,b} = sum_k e^A_{i_k},   E*_{B,b} = sum_k e^B_{i_k}

the statistics are (all rates in percent):

* error rate of a system, resample b:  W*_b = 100 E*_b / N*_b, and the
  observed rate W = 100 sum_i e_i / sum_i N_i (sec. 2 of the paper);
* bootstrap standard error: the standard deviation of W*_1..W*_B (sec. 2);
* confidence interval at level 1 - alpha: the percentile interval
  [W*_(alpha/2), W*_(1 - alpha/2)] of the B resampled rates (sec. 2);
* difference B - A: Delta*_b = W*_{B,b} - W*_{A,b} = 100 (E*_{B,b} -
  E*_{A,b}) / N*_b, its standard error and percentile interval likewise
  (sec. 3, the paired comparison; negative means B makes fewer errors);
* probability of improvement (sec. 3):
  poi = (1/B) sum_b [E*_{B,b} < E*_{A,b}], where a tie (E*_{B,b} = E*_{A,b})
  counts one half, so that two identical systems get exactly 0.5;
* two-sided p-value of "no difference" (not in the paper; the smallest alpha
  at which the percentile interval of Delta excludes 0, with the Monte Carlo
  convention (1 + count) / (B + 1) of Davison and Hinkley, 1997, "Bootstrap
  Methods and their Application", ch. 4, so it is never exactly 0):
  p = min(1, 2 (1 + min(#{Delta*_b >= 0}, #{Delta*_b <= 0})) / (B + 1)).
  Its resolution is 2 / (B + 1): with B = 10000, p = 0.0002 means "B beat A
  in every resample".

The resamples come from ``numpy.random.default_rng(seed)``; they are drawn
in blocks of whole resamples (``rng.integers`` of shape (rows, U)) whose size
depends only on U, so the numbers are a function of the counts, B and the
seed alone.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Mapping, Tuple

import numpy as np

from mtlasr.datadir import PathLike
from mtlasr.scoring import DEFAULT_METRIC, ErrorCounts

DEFAULT_NUM_SAMPLES = 10000
DEFAULT_SEED = 0
DEFAULT_LEVEL = 0.95
_BLOCK_INDICES = 1 << 21  # utterance indices drawn per block (16 MiB of int64)


@dataclasses.dataclass(frozen=True)
class PairedCounts:
    """Per-utterance counts of two systems on the same utterances.

    Attributes:
        utts (tuple[str, ...]): utterance ids, length U.
        errors_a, errors_b (np.ndarray): ``(U,)`` int64 errors S + D + I.
        ref_len (np.ndarray): ``(U,)`` int64 reference tokens N_i.
    """

    utts: Tuple[str, ...]
    errors_a: np.ndarray
    errors_b: np.ndarray
    ref_len: np.ndarray


@dataclasses.dataclass(frozen=True)
class BootstrapResult:
    """Result of :func:`bootstrap` / :func:`compare` (rates in percent).

    Attributes:
        num_utts: U, utterances resampled.
        ref_len: N, reference tokens in all of them.
        num_samples: B, bootstrap resamples.
        seed: seed of the numpy Generator.
        level: confidence level of the intervals (e.g. 0.95).
        errors_a, errors_b: observed errors E of A and B.
        rate_a, rate_b: observed error rates 100 E / N.
        se_a, se_b: bootstrap standard errors of the rates.
        ci_a, ci_b: percentile intervals (low, high) of the rates.
        diff: observed rate_b - rate_a (negative: B is better).
        se_diff, ci_diff: its bootstrap standard error and percentile interval.
        prob_improvement: poi, the fraction of resamples in which B makes
            fewer errors than A (ties count one half).
        p_value: two-sided bootstrap p-value of "no difference".
    """

    num_utts: int
    ref_len: int
    num_samples: int
    seed: int
    level: float
    errors_a: int
    errors_b: int
    rate_a: float
    rate_b: float
    se_a: float
    se_b: float
    ci_a: Tuple[float, float]
    ci_b: Tuple[float, float]
    diff: float
    se_diff: float
    ci_diff: Tuple[float, float]
    prob_improvement: float
    p_value: float

    def to_dict(self) -> Dict[str, object]:
        """The fields as a JSON-ready dict (intervals as 2-element lists)."""
        return {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in dataclasses.asdict(self).items()}


def read_utt_counts(path: PathLike) -> Dict[str, ErrorCounts]:
    """Read the per-utterance counts of a ``<metric>_utt`` file.

    Only the ``utt #csid c s d i`` lines are used (c correct, s substituted,
    d deleted, i inserted tokens; N = c + s + d); the ``ref``/``hyp``/``op``
    lines are skipped.

    Args:
        path: a ``wer_utt``, ``per_utt`` or ``cer_utt`` file
            (``mtlasr.scoring.write_report``).

    Returns:
        dict[str, ErrorCounts]: utterance id -> counts, in file order.

    Raises:
        ValueError: a ``#csid`` line without 4 non-negative integers, a
            duplicate utterance (both name file and line), or no ``#csid``
            line at all.
        OSError: the file cannot be read.
    """
    out: Dict[str, ErrorCounts] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            cols = line.split()
            if len(cols) < 2 or cols[1] != "#csid":
                continue
            try:
                c, s, d, i = (int(x) for x in cols[2:])
            except ValueError:
                raise ValueError(f"{path}:{lineno}: expected 'utt #csid c s d i', "
                                 f"got {line.strip()!r}") from None
            if min(c, s, d, i) < 0:
                raise ValueError(f"{path}:{lineno}: negative count in {line.strip()!r}")
            if cols[0] in out:
                raise ValueError(f"{path}:{lineno}: duplicate utterance {cols[0]!r}")
            out[cols[0]] = ErrorCounts(ref_len=c + s + d, sub=s, dele=d, ins=i)
    if not out:
        raise ValueError(f"{path}: no '#csid' lines (not a <metric>_utt file?)")
    return out


def pair_systems(counts_a: Mapping[str, ErrorCounts], counts_b: Mapping[str, ErrorCounts],
                 name_a: str = "A", name_b: str = "B") -> PairedCounts:
    """Line up two systems' per-utterance counts (in the order of ``counts_a``).

    Args:
        counts_a, counts_b: utterance -> counts, e.g. from :func:`read_utt_counts`.
        name_a, name_b: names of the systems in errors (e.g. their decode dirs).

    Returns:
        PairedCounts

    Raises:
        ValueError: no utterances; the utterance sets differ (names the first
            utterance of A missing from B, else the first of B missing from
            A); an utterance with different reference lengths under A and B
            (they were not scored against the same references).
    """
    if not counts_a:
        raise ValueError(f"{name_a}: no utterances")
    only = [(u, name_a, name_b) for u in counts_a if u not in counts_b]
    only += [(u, name_b, name_a) for u in counts_b if u not in counts_a]
    if only:
        utt, has, lacks = only[0]
        raise ValueError(f"utterance {utt} is scored in {has} but not in {lacks} "
                         f"({len(only)} utterance(s) are in only one system)")
    utts = tuple(counts_a)
    for u in utts:
        if counts_a[u].ref_len != counts_b[u].ref_len:
            raise ValueError(f"utterance {u}: {counts_a[u].ref_len} reference tokens in "
                             f"{name_a} but {counts_b[u].ref_len} in {name_b}; the systems "
                             f"were not scored against the same references")
    return PairedCounts(utts,
                        np.array([counts_a[u].errors for u in utts], dtype=np.int64),
                        np.array([counts_b[u].errors for u in utts], dtype=np.int64),
                        np.array([counts_a[u].ref_len for u in utts], dtype=np.int64))


def _resampled_sums(values: np.ndarray, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Sums of ``values`` ``(U, K)`` over ``num_samples`` resamples of its rows
    drawn with replacement: returns ``(num_samples, K)`` int64. Vectorised in
    blocks of whole resamples to bound memory (no loop over utterances)."""
    num_utts = values.shape[0]
    rows = max(1, _BLOCK_INDICES // num_utts)
    out = np.empty((num_samples, values.shape[1]), dtype=np.int64)
    for start in range(0, num_samples, rows):
        stop = min(start + rows, num_samples)
        idx = rng.integers(0, num_utts, size=(stop - start, num_utts))
        for k in range(values.shape[1]):
            out[start:stop, k] = values[:, k][idx].sum(axis=1)
    return out


def _interval(x: np.ndarray, level: float) -> Tuple[float, float]:
    lo, hi = np.nanpercentile(x, [50.0 * (1.0 - level), 50.0 * (1.0 + level)])
    return float(lo), float(hi)


def bootstrap(errors_a: np.ndarray, errors_b: np.ndarray, ref_len: np.ndarray,
              num_samples: int = DEFAULT_NUM_SAMPLES, seed: int = DEFAULT_SEED,
              level: float = DEFAULT_LEVEL) -> BootstrapResult:
    """Paired bootstrap of two systems' error rates (formulas in the module docstring).

    Args:
        errors_a, errors_b: ``(U,)`` non-negative integer errors per utterance.
        ref_len: ``(U,)`` non-negative integer reference tokens per utterance.
        num_samples: B >= 1 resamples.
        seed: seed of ``numpy.random.default_rng``.
        level: confidence level, 0 < level < 1.

    Returns:
        BootstrapResult. A resample whose utterances have no reference token
        at all has undefined rates; it is left out of the intervals and
        standard errors (possible only when some N_i = 0).

    Raises:
        ValueError: arrays of different or non-1-D shapes, empty, negative
            or non-integer values; no reference token in total; B < 1;
            level outside (0, 1).
    """
    arrays = [np.asarray(a) for a in (errors_a, errors_b, ref_len)]
    for name, a in zip(("errors_a", "errors_b", "ref_len"), arrays):
        if a.ndim != 1 or a.shape != arrays[0].shape or a.size == 0:
            raise ValueError(f"bootstrap: {name} must be a non-empty 1-D array of the same "
                             f"length as errors_a, got shape {a.shape}")
        if not np.issubdtype(a.dtype, np.integer) or (a < 0).any():
            raise ValueError(f"bootstrap: {name} must hold non-negative integers")
    if num_samples < 1:
        raise ValueError(f"bootstrap: num_samples must be >= 1, got {num_samples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"bootstrap: level must be in (0, 1), got {level}")
    values = np.stack(arrays, axis=1).astype(np.int64)  # (U, 3): e_A, e_B, N
    total = values.sum(axis=0)
    if total[2] == 0:
        raise ValueError("bootstrap: the references have no tokens; error rates are undefined")
    sums = _resampled_sums(values, num_samples, np.random.default_rng(seed))
    e_a, e_b, n = sums[:, 0], sums[:, 1], sums[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        w_a = np.where(n > 0, 100.0 * e_a / n, np.nan)
        w_b = np.where(n > 0, 100.0 * e_b / n, np.nan)
    delta = w_b - w_a
    d_err = e_b - e_a
    poi = (np.count_nonzero(d_err < 0) + 0.5 * np.count_nonzero(d_err == 0)) / num_samples
    tail = min(np.count_nonzero(d_err >= 0), np.count_nonzero(d_err <= 0))
    p_value = min(1.0, 2.0 * (1 + tail) / (num_samples + 1))
    rate_a = 100.0 * total[0] / total[2]
    rate_b = 100.0 * total[1] / total[2]
    return BootstrapResult(
        num_utts=int(values.shape[0]), ref_len=int(total[2]), num_samples=int(num_samples),
        seed=int(seed), level=float(level), errors_a=int(total[0]), errors_b=int(total[1]),
        rate_a=float(rate_a), rate_b=float(rate_b),
        se_a=float(np.nanstd(w_a)), se_b=float(np.nanstd(w_b)),
        ci_a=_interval(w_a, level), ci_b=_interval(w_b, level),
        diff=float(rate_b - rate_a), se_diff=float(np.nanstd(delta)),
        ci_diff=_interval(delta, level), prob_improvement=float(poi), p_value=float(p_value))


def compare(counts_a: Mapping[str, ErrorCounts], counts_b: Mapping[str, ErrorCounts],
            num_samples: int = DEFAULT_NUM_SAMPLES, seed: int = DEFAULT_SEED,
            level: float = DEFAULT_LEVEL, names: Tuple[str, str] = ("A", "B")) -> BootstrapResult:
    """Pair two systems' per-utterance counts (:func:`pair_systems`) and run
    :func:`bootstrap` on them.

    Args:
        counts_a, counts_b: utterance -> ErrorCounts of systems A and B (e.g.
            :func:`read_utt_counts` of their ``<metric>_utt`` files).
        num_samples, seed, level: see :func:`bootstrap`.
        names: names of A and B in errors.

    Returns:
        BootstrapResult (difference and poi are of B relative to A).

    Raises:
        ValueError: see :func:`pair_systems` and :func:`bootstrap`.
    """
    paired = pair_systems(counts_a, counts_b, *names)
    return bootstrap(paired.errors_a, paired.errors_b, paired.ref_len, num_samples, seed, level)


def format_report(result: BootstrapResult, name_a: str = "A", name_b: str = "B",
                  metric: str = DEFAULT_METRIC) -> str:
    """A readable multi-line report of :func:`compare`'s result (ends with a newline)."""
    m = f"%{metric.upper()}"
    pct = f"{100 * result.level:g}%"

    def row(label: str, value: float, se: float, ci: Tuple[float, float]) -> str:
        return (f"{label:<8} {value:7.2f}  +- {se:.2f} (std. error)  "
                f"{pct} interval [{ci[0]:.2f}, {ci[1]:.2f}]")

    lines = [
        f"Paired bootstrap (Bisani and Ney, 2004): {result.num_utts} utterances, "
        f"{result.ref_len} reference tokens, {result.num_samples} resamples, seed {result.seed}",
        f"A = {name_a}",
        f"B = {name_b}",
        row(f"{m} A", result.rate_a, result.se_a, result.ci_a),
        row(f"{m} B", result.rate_b, result.se_b, result.ci_b),
        row("B - A", result.diff, result.se_diff, result.ci_diff),
        f"probability that B is better than A: {result.prob_improvement:.4f}",
        f"two-sided p-value of no difference: {result.p_value:.4g}",
    ]
    return "\n".join(lines) + "\n"
