"""Error-rate scoring (WER, PER, CER) of hypothesis transcripts on any token set.

References and hypotheses are Kaldi ``text`` tables (``utt tok1 tok2 ...``).
Before alignment both sides go through the same normalisation
(:func:`normalize`):

1. tokens in the *ignore* list are removed;
2. with a *token map* (lines ``src dst``, or ``src`` alone for a token that
   is deleted) every remaining token is replaced by its target; a token that
   is not in the map is an error (a map is a closed vocabulary, e.g. the
   48 -> 39 phone folding of Lee & Hon, 1989, IEEE Trans. ASSP 37(11));
3. tokens in the ignore list are removed again, so that a map target (say
   ``sil``) can be ignored too;
4. for CER each remaining token is split into its characters (Python code
   points); the spaces between words are *not* counted as characters.

The error rate is the usual Levenshtein-based measure

    ER = (S + D + I) / N * 100   (percent)

with S substitutions, D deletions, I insertions and N reference tokens
(words for WER, phones for PER, characters for CER), from a minimum
edit-distance alignment (``kaldialign.align``, unit costs). The per-utterance
counts are summed before dividing, so long utterances weigh more than short
ones, as in NIST sclite and Kaldi's ``compute-wer``.

Outputs (:func:`write_report`) for a metric ``m`` in ``wer``/``per``/``cer``:
``<m>`` (one summary line ``%WER 31.25 [ 100 / 320, 20 ins, 30 del, 50 sub ]
name``), ``<m>_spk`` (a per-speaker table) and ``<m>_utt`` (four lines per
utterance: ``utt ref ...``, ``utt hyp ...``, ``utt op C/S/D/I ...``,
``utt #csid c s d i``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import kaldialign

from mtlasr.datadir import PathLike, atomic_open, read_table

EPS = "<eps>"
_SHOW_EPS = "***"  # how an epsilon is printed in <metric>_utt
MODES = ("all", "present", "strict")
METRICS = ("wer", "per", "cer")
DEFAULT_METRIC = "wer"
DEFAULT_MODE = "all"
_UNIT = {"wer": "#words", "per": "#phones", "cer": "#chars"}

logger = logging.getLogger(__name__)

Pair = Tuple[str, str]
TokenMap = Dict[str, Optional[str]]


def add_metric_option(parser, what: str) -> None:
    """``--metric wer|per|cer`` (default :data:`DEFAULT_METRIC`) on an
    argparse parser; ``what`` says what the option selects."""
    parser.add_argument("--metric", choices=METRICS, default=DEFAULT_METRIC, help=f"{what} (default %(default)s)")


def check_metric(metric: str) -> str:
    """Return ``metric`` if it is one of :data:`METRICS`, else raise ValueError."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    return metric


def read_token_map(path: PathLike) -> TokenMap:
    """Read a token map: ``src dst`` per line, or ``src`` alone (token deleted).

    Args:
        path: the map file. Blank lines are ignored; a line may repeat an
            earlier one with the same target.

    Returns:
        dict[str, str | None]: source token -> target token, None for a
        deleted token, in file order.

    Raises:
        ValueError: a line with more than 2 columns, or a source token given
            two different targets (the message names file and line).
        OSError: the file cannot be read.
    """
    mapping: TokenMap = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            cols = line.split()
            if not cols:
                continue
            if len(cols) > 2:
                raise ValueError(f"{path}:{lineno}: expected 'src dst' or 'src', "
                                 f"got {len(cols)} columns: {line.strip()!r}")
            src, dst = cols[0], (cols[1] if len(cols) == 2 else None)
            if src in mapping and mapping[src] != dst:
                raise ValueError(f"{path}:{lineno}: token {src!r} mapped to both "
                                 f"{mapping[src]!r} and {dst!r}")
            mapping[src] = dst
    return mapping


def normalize(tokens: Iterable[str], what: str, metric: str = DEFAULT_METRIC,
              token_map: Optional[TokenMap] = None, ignore: Iterable[str] = (),
              map_name: str = "the token map") -> List[str]:
    """Normalise one transcript for scoring (steps 1-4 of the module docstring).

    Args:
        tokens: the transcript's tokens (words or phones), length T.
        what: names the transcript in errors, e.g. ``"hyp.txt: utterance u1"``.
        metric: ``wer``, ``per`` or ``cer``; ``cer`` splits tokens into characters.
        token_map: from :func:`read_token_map`, or None (no mapping).
        ignore: tokens removed before and after mapping.
        map_name: names the map in errors (normally its file name).

    Returns:
        list[str]: the tokens to align (characters for CER); possibly empty.

    Raises:
        ValueError: unknown metric; with a map, a token (not ignored) that is
            not in it (names ``what``, the token and ``map_name``).
    """
    check_metric(metric)
    skip = frozenset(ignore)
    out = [t for t in tokens if t not in skip]
    if token_map is not None:
        mapped = []
        for t in out:
            if t not in token_map:
                raise ValueError(f"{what}: token {t!r} is not in {map_name}")
            dst = token_map[t]
            if dst is not None and dst not in skip:
                mapped.append(dst)
        out = mapped
    if metric == "cer":
        out = [ch for t in out for ch in t]
    return out


def read_text(path: PathLike) -> Dict[str, List[str]]:
    """Read a Kaldi ``text`` table (``utt tok1 tok2 ...``) as utt -> token list.

    An utterance id with no tokens is kept with ``[]``; blank lines are
    ignored (``mtlasr.datadir.read_table`` with ``allow_empty_value=True``).

    Raises:
        ValueError: a duplicate utterance id (names file and line).
        OSError: the file cannot be read.
    """
    return {u: v.split() for u, v in read_table(path, allow_empty_value=True).items()}


@dataclasses.dataclass
class ErrorCounts:
    """Edit-operation counts of one or more aligned utterances.

    Attributes:
        ref_len (int): number of reference tokens N.
        sub (int): substitutions S.
        dele (int): deletions D.
        ins (int): insertions I.

    ``a + b`` adds the counts field by field. ``rate`` is
    (S + D + I) / N * 100 in percent; with ``ref_len == 0`` it returns
    ``float('nan')`` (no exception), so reports print ``nan``.
    """

    ref_len: int = 0
    sub: int = 0
    dele: int = 0
    ins: int = 0

    @property
    def errors(self) -> int:
        return self.sub + self.dele + self.ins

    @property
    def corr(self) -> int:
        return self.ref_len - self.sub - self.dele

    @property
    def rate(self) -> float:
        return self.errors / self.ref_len * 100.0 if self.ref_len else math.nan

    def __add__(self, other: "ErrorCounts") -> "ErrorCounts":
        if not isinstance(other, ErrorCounts):
            return NotImplemented
        return ErrorCounts(self.ref_len + other.ref_len, self.sub + other.sub,
                           self.dele + other.dele, self.ins + other.ins)


def align_and_count(ref: Sequence[str], hyp: Sequence[str]) -> Tuple[ErrorCounts, List[Pair]]:
    """Align two token sequences with minimum edit distance and count errors.

    Args:
        ref (list[str]): reference tokens, length N.
        hyp (list[str]): hypothesis tokens.

    Returns:
        (ErrorCounts, list[tuple[str, str]]): the counts, and the aligned
        (ref_tok, hyp_tok) pairs where ``'<eps>'`` on the ref side marks an
        insertion and on the hyp side a deletion.

    Raises:
        ValueError: a token equals the epsilon symbol ``'<eps>'``.
    """
    if EPS in ref or EPS in hyp:
        raise ValueError(f"token {EPS!r} is reserved for alignment and may not appear in ref/hyp")
    pairs = kaldialign.align(list(ref), list(hyp), EPS)
    c = ErrorCounts(ref_len=len(ref))
    for r, h in pairs:
        if r == EPS:
            c.ins += 1
        elif h == EPS:
            c.dele += 1
        elif r != h:
            c.sub += 1
    return c, pairs


@dataclasses.dataclass
class ScoreResult:
    """Result of :func:`score`.

    Attributes:
        total (ErrorCounts): counts over all scored utterances.
        per_spk (dict[str, ErrorCounts]): counts per speaker (sorted by id).
        spk_nutt (dict[str, int]): number of scored utterances per speaker.
        per_utt (dict[str, tuple[ErrorCounts, list[tuple[str, str]]]]):
            counts and aligned pairs per scored utterance, in reference order.
    """

    total: ErrorCounts
    per_spk: Dict[str, ErrorCounts]
    spk_nutt: Dict[str, int]
    per_utt: Dict[str, Tuple[ErrorCounts, List[Pair]]]


def score(refs: Mapping[str, Sequence[str]], hyps: Mapping[str, Sequence[str]],
          utt2spk: Optional[Mapping[str, str]] = None, mode: str = DEFAULT_MODE) -> ScoreResult:
    """Score hypotheses against references (both already normalised).

    Args:
        refs (dict[str, list[str]]): utterance id -> reference tokens.
        hyps (dict[str, list[str]]): utterance id -> hypothesis tokens.
        utt2spk (dict[str, str] | None): utterance -> speaker; None makes
            every utterance its own speaker.
        mode (str): what to do with references missing from ``hyps``:
            'strict' raises KeyError; 'present' scores only utterances in
            ``hyps``; 'all' scores a missing hypothesis as empty (all
            deletions) and logs a warning with the count and the first id.

    Returns:
        ScoreResult

    Raises:
        ValueError: unknown mode; a token ``<eps>`` (names the utterance).
        KeyError: hypothesis ids not in ``refs``; (strict) the first
            reference missing from ``hyps``; an utterance missing from
            ``utt2spk``.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    extra = [u for u in hyps if u not in refs]
    if extra:
        raise KeyError(f"{len(extra)} hypothesis utterance(s) not in the reference, "
                       f"e.g. {', '.join(extra[:5])}")
    missing = [u for u in refs if u not in hyps]
    if missing:
        if mode == "strict":
            raise KeyError(f"no hypothesis for utterance {missing[0]} "
                           f"({len(missing)} missing in total)")
        if mode == "all":
            logger.warning("%d utterance(s) have no hypothesis and are scored as all deletions, "
                           "first: %s", len(missing), missing[0])
    total = ErrorCounts()
    per_spk: Dict[str, ErrorCounts] = {}
    spk_nutt: Dict[str, int] = {}
    per_utt: Dict[str, Tuple[ErrorCounts, List[Pair]]] = {}
    for utt, ref in refs.items():
        if utt not in hyps and mode == "present":
            continue
        if utt2spk is None:
            spk = utt
        elif utt in utt2spk:
            spk = utt2spk[utt]
        else:
            raise KeyError(f"utterance {utt} is not in utt2spk")
        try:
            counts, pairs = align_and_count(ref, hyps.get(utt, []))
        except ValueError as e:
            raise ValueError(f"utterance {utt}: {e}") from e
        per_utt[utt] = (counts, pairs)
        total = total + counts
        per_spk[spk] = per_spk.get(spk, ErrorCounts()) + counts
        spk_nutt[spk] = spk_nutt.get(spk, 0) + 1
    order = sorted(per_spk)
    return ScoreResult(total, {s: per_spk[s] for s in order},
                       {s: spk_nutt[s] for s in order}, per_utt)


def score_files(ref_text: PathLike, hyp_text: PathLike, metric: str = DEFAULT_METRIC,
                token_map: Optional[PathLike] = None, ignore: Iterable[str] = (),
                utt2spk: Optional[PathLike] = None, mode: str = DEFAULT_MODE) -> ScoreResult:
    """Read, normalise (:func:`normalize`) and score two ``text`` files.

    Args:
        ref_text, hyp_text: Kaldi text tables of references and hypotheses.
        metric: ``wer``, ``per`` or ``cer``.
        token_map: a map file for :func:`read_token_map`, or None.
        ignore: tokens removed from both sides before alignment.
        utt2spk: a ``utt spk`` table for the per-speaker counts, or None
            (every utterance its own speaker).
        mode: handling of missing hypotheses, see :func:`score`.

    Returns:
        ScoreResult

    Raises:
        ValueError: unknown metric or mode; a malformed table or map; a token
            not in the map (names the text file, the utterance, the token and
            the map file); an utt2spk line with more than one speaker.
        KeyError: see :func:`score`.
        OSError: a file cannot be read.
    """
    check_metric(metric)
    mapping = read_token_map(token_map) if token_map is not None else None
    ignore = tuple(ignore)

    def load(path: PathLike) -> Dict[str, List[str]]:
        return {u: normalize(toks, f"{path}: utterance {u}", metric, mapping, ignore,
                             f"the token map {token_map}")
                for u, toks in read_text(path).items()}

    spk_table = None
    if utt2spk is not None:
        spk_table = read_table(utt2spk)
        bad = next((u for u, s in spk_table.items() if len(s.split()) != 1), None)
        if bad is not None:
            raise ValueError(f"{utt2spk}: utterance {bad}: expected 'utt spk', "
                             f"got {bad} {spk_table[bad]!r}")
    return score(load(ref_text), load(hyp_text), spk_table, mode)


def summary_line(counts: ErrorCounts, name: str, metric: str = DEFAULT_METRIC) -> str:
    """Format ``%WER 31.25 [ 100 / 320, 20 ins, 30 del, 50 sub ] name``
    (``%PER`` / ``%CER`` for the other metrics)."""
    return (f"%{check_metric(metric).upper()} {counts.rate:.2f} [ {counts.errors} / "
            f"{counts.ref_len}, {counts.ins} ins, {counts.dele} del, {counts.sub} sub ] {name}")


def read_summary(path: PathLike) -> Optional[Tuple[int, int]]:
    """(errors, reference tokens) of a :func:`summary_line` file (a decode
    dir's ``wer``, ``per`` or ``cer``), or None if the file does not exist.

    Raises: ValueError naming the file when it holds no summary line."""
    path = Path(path)
    if not path.is_file():
        return None
    m = re.search(r"%(?:WER|PER|CER)\s+[\d.]+\s+\[\s*(\d+)\s*/\s*(\d+)", path.read_text())
    if not m:
        raise ValueError(f"{path}: not an error-rate summary line")
    return int(m.group(1)), int(m.group(2))


def _spk_table(result: ScoreResult, metric: str) -> str:
    header = ["speaker", "#utt", _UNIT[metric], "corr", "sub", "del", "ins", "err",
              metric.upper()]
    rows = [header]
    items = [(s, result.spk_nutt[s], c) for s, c in result.per_spk.items()]
    items.append(("SUM", len(result.per_utt), result.total))
    for spk, nutt, c in items:
        rows.append([spk, str(nutt), str(c.ref_len), str(c.corr), str(c.sub), str(c.dele),
                     str(c.ins), str(c.errors), f"{c.rate:.2f}"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [v.rjust(w) for v, w in zip(r[1:], widths[1:])]
        lines.append("  ".join(cells))
    return "\n".join(lines) + "\n"


def _op(r: str, h: str) -> str:
    if r == EPS:
        return "I"
    if h == EPS:
        return "D"
    return "C" if r == h else "S"


def _utt_block(utt: str, counts: ErrorCounts, pairs: List[Pair]) -> str:
    def show(t: str) -> str:
        return _SHOW_EPS if t == EPS else t

    refs = [show(r) for r, _ in pairs]
    hyps = [show(h) for _, h in pairs]
    ops = [_op(r, h) for r, h in pairs]
    widths = [max(len(a), len(b)) for a, b in zip(refs, hyps)]
    lines = []
    for label, toks in (("ref", refs), ("hyp", hyps), ("op", ops)):
        body = " ".join(t.ljust(w) for t, w in zip(toks, widths))
        lines.append(f"{utt} {label:<4} {body}".rstrip())
    lines.append(f"{utt} #csid {counts.corr} {counts.sub} {counts.dele} {counts.ins}")
    return "\n".join(lines) + "\n"


def write_report(result: ScoreResult, outdir: PathLike, name: str,
                 metric: str = DEFAULT_METRIC) -> str:
    """Write ``<metric>``, ``<metric>_spk`` and ``<metric>_utt`` into ``outdir``.

    Each file is written atomically (``mtlasr.datadir.atomic_open``).
    ``<metric>`` holds the single summary line (:func:`summary_line`);
    ``<metric>_spk`` a table (speaker, #utt, #words/#phones/#chars, corr,
    sub, del, ins, err, rate) ending with a SUM row; ``<metric>_utt`` four
    lines per utterance (``ref``, ``hyp``, ``op`` with C/S/D/I and epsilons
    shown as ``***``, then ``#csid c s d i``: correct, substituted, deleted,
    inserted tokens), in the order of ``result.per_utt``.

    Args:
        result (ScoreResult): from :func:`score`.
        outdir: output directory (created if missing).
        name: label appended to the summary line (e.g. the hypothesis file).
        metric: ``wer``, ``per`` or ``cer`` (lower case; names the files).

    Returns:
        str: the summary line.

    Raises:
        ValueError: unknown metric.
        OSError: the directory or files cannot be written.
    """
    line = summary_line(result.total, name, metric)
    base = os.path.join(os.fspath(outdir), metric)
    for path, text in ((base, line + "\n"), (base + "_spk", _spk_table(result, metric)),
                       (base + "_utt", "".join(_utt_block(u, c, p)
                                               for u, (c, p) in result.per_utt.items()))):
        with atomic_open(path) as f:
            f.write(text)
    return line
