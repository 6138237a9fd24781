"""Phone error rate (PER) scoring for TIMIT-style phone recognition.

References and hypotheses are phone sequences (normally in the 48-phone
training set). Before alignment both are folded to the 39-phone scoring set
of Lee & Hon (1989), "Speaker-independent phone recognition using hidden
Markov models", IEEE Trans. ASSP 37(11); ``sil`` is scored as an ordinary
token. The error rate is the usual Levenshtein-based measure

    PER = (S + D + I) / N * 100

with S substitutions, D deletions, I insertions and N reference phones,
obtained from a minimum edit-distance alignment (``kaldialign.align``).
"""

import dataclasses
import logging
import math
import os
from typing import Dict, Iterable, List, Optional, Tuple

import kaldialign

EPS = "<eps>"
_SHOW_EPS = "***"  # how an epsilon is printed in per_utt
_MODES = ("all", "present", "strict")

logger = logging.getLogger(__name__)

Pair = Tuple[str, str]


def read_phone_map(path: str, src_col: int, dst_col: int) -> Dict[str, Optional[str]]:
    """Read a ``timit60 train48 score39`` phone map.

    Args:
        path (str): map file; each line has 3 whitespace-separated columns
            (60-, 48- and 39-phone symbols) or 1 column (a 60-set phone that is
            deleted, e.g. ``q``). Blank lines are ignored.
        src_col (int): column of the source phones (0=60, 1=48, 2=39).
        dst_col (int): column of the target phones (0, 1 or 2).

    Returns:
        dict[str, str | None]: source phone -> target phone. One-column lines
        map to None (phone deleted) when ``src_col`` is 0; for other source
        columns they are skipped (the phone is not in that set).

    Raises:
        ValueError: bad column numbers; a line with 2 or more than 3 columns
            (the message names the file and line number); a source phone
            mapped to two different targets.
        OSError: the file cannot be read.
    """
    if src_col not in (0, 1, 2) or dst_col not in (0, 1, 2):
        raise ValueError(f"read_phone_map: columns must be 0, 1 or 2, got {src_col}, {dst_col}")
    mapping: Dict[str, Optional[str]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            cols = line.split()
            if not cols:
                continue
            if len(cols) == 1:
                if src_col != 0:
                    continue
                src, dst = cols[0], None
            elif len(cols) == 3:
                src, dst = cols[src_col], cols[dst_col]
            else:
                raise ValueError(f"{path}:{lineno}: expected 1 or 3 columns, got {len(cols)}: {line.strip()!r}")
            if src in mapping and mapping[src] != dst:
                raise ValueError(f"{path}:{lineno}: phone {src!r} mapped to both {mapping[src]!r} and {dst!r}")
            mapping[src] = dst
    return mapping


def fold(seq: Iterable[str], mapping: Dict[str, Optional[str]], what: str) -> List[str]:
    """Map each phone of ``seq`` through ``mapping``, dropping those mapped to None.

    Args:
        seq (Iterable[str]): phone sequence.
        mapping (dict[str, str | None]): as returned by :func:`read_phone_map`.
        what (str): description used in errors (e.g. the utterance id).

    Returns:
        list[str]: the folded sequence (possibly shorter than ``seq``).

    Raises:
        ValueError: a phone is not in the map (names ``what`` and the phone).
    """
    out = []
    for p in seq:
        if p not in mapping:
            raise ValueError(f"{what}: phone {p!r} is not in the phone map")
        if mapping[p] is not None:
            out.append(mapping[p])
    return out


def _read_table(path: str, kind: str) -> Dict[str, List[str]]:
    table: Dict[str, List[str]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            cols = line.split()
            if not cols:
                continue
            if cols[0] in table:
                raise ValueError(f"{path}:{lineno}: duplicate {kind} id {cols[0]!r}")
            table[cols[0]] = cols[1:]
    return table


def read_text(path: str) -> Dict[str, List[str]]:
    """Read a Kaldi ``text`` file (``utt p1 p2 ...`` per line).

    Args:
        path (str): the file. Blank lines are ignored; an utterance id with no
            phones is kept with an empty transcript ``[]``.

    Returns:
        dict[str, list[str]]: utterance id -> phone list, in file order.

    Raises:
        ValueError: duplicate utterance id (names file and line).
        OSError: the file cannot be read.
    """
    return _read_table(path, "utterance")


def read_utt2spk(path: str) -> Dict[str, str]:
    """Read a Kaldi ``utt2spk`` file (``utt spk`` per line).

    Returns:
        dict[str, str]: utterance id -> speaker id.

    Raises:
        ValueError: a line without exactly 2 columns, or a duplicate utterance
            id (names file and line).
        OSError: the file cannot be read.
    """
    out: Dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            cols = line.split()
            if not cols:
                continue
            if len(cols) != 2:
                raise ValueError(f"{path}:{lineno}: expected 'utt spk', got {line.strip()!r}")
            if cols[0] in out:
                raise ValueError(f"{path}:{lineno}: duplicate utterance id {cols[0]!r}")
            out[cols[0]] = cols[1]
    return out


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


def align_and_count(ref: List[str], hyp: List[str]) -> Tuple[ErrorCounts, List[Pair]]:
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


def score(refs: Dict[str, List[str]], hyps: Dict[str, List[str]],
          utt2spk: Optional[Dict[str, str]] = None, mode: str = "all") -> ScoreResult:
    """Score hypotheses against references (sequences should already be folded).

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
        ValueError: unknown mode.
        KeyError: hypothesis ids not in ``refs``; (strict) the first
            reference missing from ``hyps``; an utterance missing from
            ``utt2spk``.
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
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
        counts, pairs = align_and_count(ref, hyps.get(utt, []))
        per_utt[utt] = (counts, pairs)
        total = total + counts
        per_spk[spk] = per_spk.get(spk, ErrorCounts()) + counts
        spk_nutt[spk] = spk_nutt.get(spk, 0) + 1
    order = sorted(per_spk)
    return ScoreResult(total, {s: per_spk[s] for s in order},
                       {s: spk_nutt[s] for s in order}, per_utt)


def per_line(counts: ErrorCounts, name: str) -> str:
    """Format ``%PER 31.25 [ 100 / 320, 20 ins, 30 del, 50 sub ] name``."""
    return (f"%PER {counts.rate:.2f} [ {counts.errors} / {counts.ref_len}, "
            f"{counts.ins} ins, {counts.dele} del, {counts.sub} sub ] {name}")


def _write_atomic(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _spk_table(result: ScoreResult) -> str:
    header = ["speaker", "#utt", "#phones", "corr", "sub", "del", "ins", "err", "PER"]
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
    show = lambda t: _SHOW_EPS if t == EPS else t  # noqa: E731
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


def write_report(result: ScoreResult, outdir: str, name: str) -> str:
    """Write ``per``, ``per_spk`` and ``per_utt`` into ``outdir``.

    Each file is written to ``<file>.tmp`` and then moved into place with
    ``os.replace``. ``per`` holds the single ``%PER`` line; ``per_spk`` a table
    (speaker, #utt, #phones, corr, sub, del, ins, err, PER) ending with a SUM
    row; ``per_utt`` four lines per utterance (``ref``, ``hyp``, ``op`` with
    C/S/D/I and epsilons shown as ``***``, then ``#csid c s d i``).

    Args:
        result (ScoreResult): from :func:`score`.
        outdir (str): output directory (created if missing).
        name (str): label appended to the ``%PER`` line.

    Returns:
        str: the ``%PER`` line.

    Raises:
        OSError: the directory or files cannot be written.
    """
    os.makedirs(outdir, exist_ok=True)
    line = per_line(result.total, name)
    _write_atomic(os.path.join(outdir, "per"), line + "\n")
    _write_atomic(os.path.join(outdir, "per_spk"), _spk_table(result))
    _write_atomic(os.path.join(outdir, "per_utt"),
                  "".join(_utt_block(u, c, p) for u, (c, p) in result.per_utt.items()))
    return line
