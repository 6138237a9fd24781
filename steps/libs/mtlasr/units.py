"""Output units of CTC models: phones, letters or sentencepiece pieces.

A unit directory (a ``lang`` dir of a CTC recipe) holds:

- ``units.txt``: the symbol table ``<unit> <id>``, ``<blk> 0`` first (the
  CTC blank, Graves et al. 2006), then the units with ids 1..V-1;
- ``unit_type``: ``phone`` (a transcript is its space-separated units),
  ``letter`` (every word is spelt, words separated by the ``space_symbol``
  unit, written in ``space_symbol``) or ``piece`` (sentencepiece pieces of
  ``sp.model``, :mod:`mtlasr.pieces`).

:func:`make_units` builds the table of a phone or letter inventory from
training transcripts; :class:`UnitTable` turns transcripts into unit ids
(and back) with errors that name the utterance and the unit.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Dict, Iterable, List, Sequence

import numpy as np

from .datadir import PathLike, atomic_open

BLANK = "<blk>"
UNIT_TYPES = ("phone", "letter", "piece")


def split_units(text: str, unit_type: str, space_symbol: str = "<space>") -> List[str]:
    """The units of one transcript (``phone`` or ``letter``).

    Letters: each word's characters, with ``space_symbol`` between words.
    """
    from .lm import to_units

    if unit_type in ("phone", "letter"):  # the same units as the phone / letter LM of steps/train_lm.sh
        return to_units(text.split(), "word" if unit_type == "phone" else "char", space_symbol)
    raise ValueError(f"unit type '{unit_type}': split_units handles phone and letter")


def make_units(texts: Iterable[str], unit_type: str, space_symbol: str = "<space>") -> Dict[str, int]:
    """Unit inventory of transcripts, unit -> count, sorted by unit."""
    c: Counter = Counter()
    for t in texts:
        c.update(split_units(t, unit_type, space_symbol))
    return dict(sorted(c.items()))


def write_units(units: Sequence[str], unit_type: str, out_dir: PathLike, space_symbol: str = "<space>") -> None:
    """Write ``units.txt`` (blank 0, then ``units`` 1..) and ``unit_type`` atomically.

    Raises: ValueError for a unit that contains white space or is the blank.
    """
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    for u in units:
        if not u or any(ch.isspace() for ch in u) or u == BLANK:
            raise ValueError(f"unit {u!r} cannot be in units.txt (empty, white space, or the blank)")
    with atomic_open(d / "units.txt") as f:
        f.write(f"{BLANK} 0\n")
        for i, u in enumerate(units, 1):
            f.write(f"{u} {i}\n")
    with atomic_open(d / "unit_type") as f:
        f.write(f"{unit_type} {space_symbol}\n" if unit_type == "letter" else f"{unit_type}\n")


def read_units(path: PathLike) -> List[str]:
    """The units of a ``units.txt`` symbol table, in id order.

    Raises:
      ValueError: a malformed line, a repeated unit or id, ids that are not
        0 .. V-1, or id 0 not the blank ``<blk>`` (naming file and line).
    """
    by_id: Dict[int, str] = {}
    seen: Dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or not parts[1].isdigit():
                raise ValueError(f"{path}:{lineno}: expected '<unit> <id>', got {line.rstrip()!r}")
            unit, i = parts[0], int(parts[1])
            if unit in seen:
                raise ValueError(f"{path}:{lineno}: unit '{unit}' repeated (first on line {seen[unit]})")
            if i in by_id:
                raise ValueError(f"{path}:{lineno}: id {i} repeated")
            by_id[i], seen[unit] = unit, lineno
    if not by_id:
        raise ValueError(f"{path}: no units")
    if sorted(by_id) != list(range(len(by_id))):
        missing = sorted(set(range(max(by_id) + 1)) - set(by_id))
        raise ValueError(f"{path}: ids must be 0..{len(by_id) - 1} without gaps (missing {missing[:5]})")
    if by_id[0] != BLANK:
        raise ValueError(f"{path}: id 0 must be the CTC blank {BLANK}, got '{by_id[0]}'")
    return [by_id[i] for i in range(len(by_id))]


class UnitTable:
    """The units of a unit directory, and transcript <-> id conversion.

    Args: lang_dir: a directory with ``units.txt`` and ``unit_type`` (and
    ``sp.model`` for pieces).
    Raises: FileNotFoundError, ValueError naming the file and line.
    """

    def __init__(self, lang_dir: PathLike):
        d = Path(lang_dir)
        path = d / "units.txt"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no units.txt (make it with utils/prepare_units.sh "
                                    f"or steps/train_sentencepiece.sh)")
        self.units: List[str] = read_units(path)
        self.index: Dict[str, int] = {u: i for i, u in enumerate(self.units)}
        tpath = d / "unit_type"
        kind = tpath.read_text().split() if tpath.is_file() else ["phone"]
        self.unit_type = kind[0]
        if self.unit_type not in UNIT_TYPES:
            raise ValueError(f"{tpath}: unknown unit type '{self.unit_type}' ({', '.join(UNIT_TYPES)})")
        self.space_symbol = kind[1] if len(kind) > 1 else "<space>"
        self.coder = None
        if self.unit_type == "piece":
            from .pieces import PieceCoder

            self.coder = PieceCoder(d / "sp.model")
        self.source = str(path)

    def __len__(self) -> int:
        return len(self.units)

    def encode(self, text: str, utt: str = "?") -> np.ndarray:
        """Unit ids ``(U,) int64`` of a transcript.

        Raises: ValueError naming the utterance and the unit outside the inventory.
        """
        if self.coder is not None:
            return np.asarray(self.coder.encode(text), dtype=np.int64)
        toks = split_units(text, self.unit_type, self.space_symbol)
        try:
            return np.asarray([self.index[t] for t in toks], dtype=np.int64)
        except KeyError as e:
            raise ValueError(f"utterance {utt}: unit {e.args[0]!r} is not in {self.source} "
                             f"({len(self.units) - 1} units)") from None

    def decode(self, ids: Iterable[int]) -> str:
        """The transcript of unit ids (letters joined into words, pieces decoded)."""
        ids = [int(i) for i in ids if int(i) != 0]
        if self.coder is not None:
            return self.coder.decode(ids)
        toks = [self.units[i] for i in ids]
        if self.unit_type == "letter":
            return " ".join("".join(w) for w in _split_on(toks, self.space_symbol) if w)
        return " ".join(toks)


def _split_on(toks: List[str], sep: str) -> List[List[str]]:
    out: List[List[str]] = [[]]
    for t in toks:
        if t == sep:
            out.append([])
        else:
            out[-1].append(t)
    return out
