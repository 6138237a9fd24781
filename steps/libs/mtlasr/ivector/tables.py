"""Output tables of the i-vector programs: Kaldi ark/scp pairs written
atomically, and the per-iteration objective summary of an EM step.

An ``objf`` file holds one line ``<iteration> <log-likelihood per frame>``
per finished EM iteration (the data's log-likelihood under the model that
went into the iteration); a rerun of an iteration replaces its line and
drops those of later ones.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, List, Optional, Tuple

import numpy as np

from ..datadir import PathLike, atomic_open


def write_objf(path: PathLike, iteration: int, objf: float) -> Optional[float]:
    """Record ``iteration objf`` in the summary file ``path`` (rewritten
    atomically, lines of later iterations dropped, so that a rerun of an
    iteration replaces its line); return the previous iteration's value, if
    recorded."""
    path = Path(path)
    lines: List[Tuple[int, float]] = []
    if path.is_file():
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and int(parts[0]) < iteration:
                lines.append((int(parts[0]), float(parts[1])))
    prev = dict(lines).get(iteration - 1)
    lines.append((iteration, objf))
    with atomic_open(path) as fh:
        for it, v in lines:
            fh.write(f"{it} {v:.6f}\n")
    return prev


def objf_line(iteration: int, objf: float, prev: Optional[float]) -> str:
    """``iteration N: log-likelihood per frame X (change +Y)`` (the change
    only when the previous iteration's value is known)."""
    change = "" if prev is None else f" (change {objf - prev:+.4f})"
    return f"iteration {iteration}: log-likelihood per frame {objf:.4f}{change}"


def write_ark_scp(ark: PathLike, scp: PathLike, items: Iterable[Tuple[str, np.ndarray]]) -> int:
    """Write Kaldi float32 vectors/matrices to ``ark`` with an index ``scp``.

    Both are written under temporary names; the ark is moved into place
    first and the scp (whose entries name the final ark, made absolute so
    the scp is valid from any directory) last, so an existing scp always
    points at a complete ark.

    Returns:
      the number of entries written.
    """
    import kaldiio

    ark, scp = Path(ark).resolve(), Path(scp)
    tmp_ark, tmp_scp = ark.with_name(ark.name + ".tmp"), scp.with_name(scp.name + ".tmp")
    ark.parent.mkdir(parents=True, exist_ok=True)
    scp.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    try:
        with kaldiio.WriteHelper(f"ark,scp:{tmp_ark},{tmp_scp}") as writer:
            for key, value in items:
                writer(key, np.asarray(value, dtype=np.float32))
                n += 1
        lines = []
        for line in tmp_scp.read_text().splitlines():
            key, spec = line.split(" ", 1)
            offset = spec.rsplit(":", 1)[1]
            lines.append(f"{key} {ark}:{offset}\n")
        os.replace(tmp_ark, ark)
        with atomic_open(scp) as f:
            f.writelines(lines)
    finally:
        for p in (tmp_ark, tmp_scp):
            if p.exists():
                p.unlink()
    return n


def record_objf(path: Optional[PathLike], iteration: int, objf: float) -> str:
    """Record an EM iteration's objective in the summary file ``path`` (if
    given, :func:`write_objf`) and return its log line (:func:`objf_line`,
    with the change from the previous iteration's recorded value)."""
    prev = write_objf(path, iteration, objf) if path else None
    return objf_line(iteration, objf, prev)
