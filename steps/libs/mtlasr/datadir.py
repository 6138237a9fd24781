"""Kaldi data directories and table files (utt2spk, spk2utt, wav.scp, text, ...).

A data dir is a folder of sorted two-column text tables keyed by utterance
(``wav.scp``, ``text``, ``utt2spk``, ``feats.scp``, ``utt2*``) or by speaker
(``spk2utt``, ``cmvn.scp``, ``spk2gender``). Keys are sorted with the C
locale (byte order), and every speaker id is a prefix of its utterance ids,
as in Kaldi's data-dir contract.
"""

from __future__ import annotations

import contextlib
import filecmp
import fnmatch
import logging
import os
import shutil
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Union

PathLike = Union[str, os.PathLike]

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "w", encoding: Optional[str] = "utf-8"):
    """Open ``path.tmp`` for writing and move it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched,
    so a failed step never leaves a half-written output behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    kwargs = {} if "b" in mode else {"encoding": encoding}
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def read_table(path: PathLike, allow_empty_value: bool = False) -> Dict[str, str]:
    """Read a two-column Kaldi table ``key rest-of-line`` into an ordered dict.

    Args:
      path: the table file.
      allow_empty_value: accept lines with a key only (value ``""``), as in a
        ``text`` file whose transcript is empty.

    Raises:
      FileNotFoundError: no such file.
      ValueError: a duplicate key, or a line with no value, naming file and line.
    """
    out: Dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            parts = line.split(maxsplit=1)
            key = parts[0]
            value = parts[1].strip() if len(parts) > 1 else ""
            if not value and not allow_empty_value:
                raise ValueError(f"{path}:{lineno}: no value for key '{key}'")
            if key in out:
                raise ValueError(f"{path}:{lineno}: duplicate key '{key}'")
            out[key] = value
    return out


def write_table(path: PathLike, table: Mapping[str, object]) -> bool:
    """Write ``key value`` lines sorted by key in C-locale (byte) order, atomically.

    Values that are lists or tuples are joined with single spaces. A file
    that already holds exactly these lines is left untouched (its time stamp
    too), so that steps made from it see nothing new.

    Returns: whether the file was (re)written.
    """
    lines = []
    for key in sorted(table, key=lambda k: k.encode("utf-8")):
        value = table[key]
        if isinstance(value, (list, tuple)):
            value = " ".join(str(v) for v in value)
        lines.append(f"{key} {value}\n".rstrip(" \n") + "\n")
    text = "".join(lines)
    path = Path(path)
    if path.is_file() and path.read_bytes() == text.encode("utf-8"):
        return False
    with atomic_open(path) as f:
        f.write(text)
    return True


def same_tree(a: PathLike, b: PathLike, ignore: Sequence[str] = ("*.log", ".*.record")) -> bool:
    """Whether directories ``a`` and ``b`` hold the same files (names, and
    contents byte for byte), recursively; files matching a pattern of
    ``ignore`` (logs with time stamps, step records) are not compared."""
    def files(root: Path) -> Dict[str, Path]:
        return {str(p.relative_to(root)): p for p in sorted(root.rglob("*"))
                if p.is_file() and not any(fnmatch.fnmatch(p.name, g) for g in ignore)}

    fa, fb = files(Path(a)), files(Path(b))
    return fa.keys() == fb.keys() and all(filecmp.cmp(fa[k], fb[k], shallow=False) for k in fa)


def _swap_dir(tmp: Path, final: Path) -> None:
    """Move ``tmp`` into the place of ``final``; an old ``final`` is moved
    aside first and removed only after ``tmp`` is in place."""
    old = None
    if final.exists():
        old = final.with_name(f"{final.name}.old.{os.getpid()}")
        final.rename(old)
    tmp.rename(final)
    if old is not None:
        shutil.rmtree(old)


def replace_dir(tmp: PathLike, final: PathLike) -> bool:
    """Put the finished directory ``tmp`` in the place of ``final``.

    When ``final`` already holds the same files (:func:`same_tree`), ``tmp``
    is removed and ``final`` is left untouched, time stamps included, so a
    rerun that makes the same output invalidates nothing downstream.
    Otherwise the old ``final`` is moved aside, ``tmp`` moved into place,
    and only then the old one removed.

    Returns: whether ``final`` was replaced.
    """
    tmp, final = Path(tmp), Path(final)
    if final.is_dir() and same_tree(tmp, final):
        shutil.rmtree(tmp)
        return False
    _swap_dir(tmp, final)
    return True


def utt2spk_to_spk2utt(utt2spk: Mapping[str, str]) -> Dict[str, List[str]]:
    """Invert utt2spk: speaker -> sorted list of its utterance ids."""
    spk2utt: Dict[str, List[str]] = {}
    for utt in sorted(utt2spk, key=lambda k: k.encode("utf-8")):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return spk2utt


class DataDir:
    """A Kaldi data directory on disk.

    Attributes:
      path: the directory.
      utt2spk: utterance id -> speaker id (always present).
      spk2utt: speaker id -> list of utterance ids.
    """

    def __init__(self, path: PathLike):
        self.path = Path(path)
        f = self.path / "utt2spk"
        if not f.is_file():
            raise FileNotFoundError(f"{f}: not a data directory (no utt2spk)")
        self.utt2spk = read_table(f)
        self.spk2utt = utt2spk_to_spk2utt(self.utt2spk)

    @property
    def utts(self) -> List[str]:
        """Utterance ids in sorted order."""
        return list(self.utt2spk)

    def has(self, name: str) -> bool:
        return (self.path / name).is_file()

    def table(self, name: str, allow_empty_value: bool = False) -> Dict[str, str]:
        """Read ``<dir>/<name>`` (e.g. ``wav.scp``) as a table."""
        return read_table(self.path / name, allow_empty_value=allow_empty_value)

    def text(self) -> Dict[str, List[str]]:
        """The ``text`` file as utterance -> token list (empty list allowed)."""
        return {u: v.split() for u, v in self.table("text", allow_empty_value=True).items()}


def write_data_dir(path: PathLike, tables: Mapping[str, Mapping[str, object]]) -> bool:
    """Write a data dir from ``{"wav.scp": {...}, "text": {...}, "utt2spk": {...}, ...}``.

    spk2utt is derived from utt2spk. Every speaker id must prefix its
    utterance ids. What happens to an existing dir depends on what the files
    derived from it (feats.scp, utt2num_frames, cmvn.scp, splits, written
    by later steps) were made from, the audio and the speakers:

    * its ``wav.scp``, ``segments`` and ``utt2spk`` come out the same: the
      other tables are rewritten where they changed (a corrected
      transcript) and the derived files stay;
    * otherwise a fresh dir holding only these tables is built beside it
      and replaces it, so derived files that no longer belong (features of
      utterances that are gone) go with the old dir, which is removed only
      after the new one is complete.

    A table that comes out the same keeps its file and time stamp.

    Returns: whether any file was (re)written.

    Raises:
      ValueError: utt2spk missing, or a speaker id that is not a prefix of an
        utterance id (naming the utterance).
    """
    if "utt2spk" not in tables:
        raise ValueError("write_data_dir: utt2spk is required")
    utt2spk = tables["utt2spk"]
    for utt, spk in utt2spk.items():
        if not str(utt).startswith(str(spk)):
            raise ValueError(f"{path}: speaker '{spk}' is not a prefix of utterance '{utt}'")
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    all_tables = dict(tables)
    all_tables["spk2utt"] = utt2spk_to_spk2utt(utt2spk)
    for name, table in all_tables.items():
        write_table(tmp / name, table)
    base = [n for n in ("wav.scp", "segments", "utt2spk", "spk2utt") if (tmp / n).is_file() or (path / n).is_file()]
    if path.is_dir() and all((tmp / n).is_file() and (path / n).is_file()
                             and filecmp.cmp(tmp / n, path / n, shallow=False) for n in base):
        changed = [n for n in all_tables if not ((path / n).is_file() and filecmp.cmp(tmp / n, path / n, shallow=False))]
        for n in changed:
            os.replace(tmp / n, path / n)
        shutil.rmtree(tmp)
        return bool(changed)
    _swap_dir(tmp, path)
    return True


def read_int_list(path: PathLike) -> List[int]:
    """Read whitespace-separated integers (e.g. ``phones/disambig.int``)."""
    return [int(x) for x in Path(path).read_text().split()]


def read_symbol_table(path: PathLike) -> Dict[str, int]:
    """Read an OpenFst text symbol table ``symbol id`` into symbol -> id.

    Raises:
      ValueError: a malformed line, naming file and line.
    """
    out: Dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2:
                raise ValueError(f"{path}:{lineno}: expected 'symbol id', got {line!r}")
            out[parts[0]] = int(parts[1])
    return out

