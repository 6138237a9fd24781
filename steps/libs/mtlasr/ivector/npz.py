"""Model and accumulator files: ``.npz`` archives tagged with their kind.

Every model (``diag_gmm``, ``full_gmm``, ``ivector_extractor``), every
accumulator (``diag_gmm_acc``, ``full_gmm_acc``, ``ivector_extractor_acc``)
and every Gaussian selection (``gselect``) is one ``.npz`` with an extra
string array ``kind``, so that a file handed to the wrong program is an
error naming the file and both kinds. Files are written atomically
(:func:`mtlasr.datadir.atomic_open`) and read without pickles.
"""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from ..datadir import PathLike, atomic_open


def npz_kind(path: PathLike) -> str:
    """The ``kind`` of a file written by :func:`save_npz`.

    Raises:
      FileNotFoundError: no such file.
      ValueError: an .npz without ``kind``.
    """
    with np.load(path, allow_pickle=False) as d:
        if "kind" not in d:
            raise ValueError(f"{path}: not a model or accumulator file of mtlasr.ivector (no 'kind')")
        return str(d["kind"])


def save_npz(path: PathLike, kind: str, **arrays) -> None:
    """Write ``arrays`` plus ``kind`` to ``path`` (.npz), atomically."""
    with atomic_open(path, "wb") as f:
        np.savez(f, kind=np.array(kind), **arrays)


def load_npz(path: PathLike, kind: str) -> Dict[str, np.ndarray]:
    """Arrays of an .npz written by :func:`save_npz`, checking its kind.

    Raises:
      FileNotFoundError: no such file.
      ValueError: the file holds something else.
    """
    with np.load(path, allow_pickle=False) as d:
        got = str(d["kind"]) if "kind" in d else "?"
        if got != kind:
            raise ValueError(f"{path}: expected a {kind} file, found {got}")
        return {k: d[k] for k in d.files if k != "kind"}


def load_any(path: PathLike, classes: Sequence[type], what: str):
    """The object that ``path`` holds, read by whichever of ``classes`` (each
    with a ``kind`` and a ``load``) has its kind.

    Raises:
      FileNotFoundError: no such file.
      ValueError: none of the kinds (``what`` names the family).
    """
    kind = npz_kind(path)
    for cls in classes:
        if kind == cls.kind:
            return cls.load(path)
    raise ValueError(f"{path}: not a {what} (kind {kind})")
