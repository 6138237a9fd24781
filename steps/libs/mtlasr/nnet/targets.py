"""Targets of the auxiliary tasks: reading them for a data dir.

A task's ``source`` (mtlasr.nnet.tasks.task_spec) names a file per data dir
(``{data}``, ``{set}``): a table of utterance vectors or labels, an scp of
frame vectors (every ``period`` frames), a per-speaker table read through
utt2spk; frame labels come from the alignment's phones, mapped to classes
by ``map``. :func:`load_targets` reads them into :class:`TaskTargets`,
checking each utterance and naming the file and line of what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional

import numpy as np

from .tasks import LABEL_KINDS


def source_path(template: str, data_dir: str) -> Path:
    """The target file of a data dir: ``{data}`` -> data dir, ``{set}`` -> its base name."""
    d = str(data_dir).rstrip("/")
    return Path(template.replace("{data}", d).replace("{set}", Path(d).name))


def task_input_files(cfg_tasks: Mapping[str, Any], data_dirs: Iterable[str]) -> List[Path]:
    """The files the tasks read their targets from for these data dirs
    (target tables and scps, a speaker vector's utt2spk, class maps), in
    declaration order, for a step's provenance record. Frame labels come
    from the alignment, which the step lists itself."""
    out: List[Path] = []
    for spec in cfg_tasks.values():
        for d in data_dirs:
            if spec["targets"] != "frame_label":
                out.append(source_path(spec["source"], d))
            if spec["targets"] == "spk_vector":
                out.append(Path(str(d).rstrip("/")) / "utt2spk")
        if spec.get("map"):
            out.append(Path(spec["map"]))
    return list(dict.fromkeys(out))


@dataclass
class TaskTargets:
    """Targets of one auxiliary task for the utterances of one data set.

    Attributes:
      name, kind, period: from the declaration.
      dim: target dimension K.
      values: utterance -> ``(K,)`` (utt_vector, spk_vector) or ``(rows, K)``
        (frame_vector) float32, or a class id ``()`` int64 (utt_label; -100 =
        a label unknown to the training set, ignored by the loss).
      classes: utt_label class names (K = len(classes)).
      source: the file they were read from (for messages).
    """

    name: str
    kind: str
    dim: int
    period: int
    source: str
    values: Dict[str, np.ndarray] = field(default_factory=dict)
    classes: Optional[List[str]] = None  # utt_label: class names, index = class id

    def check(self, utt: str, num_frames: int) -> None:
        """Raise ValueError if ``utt`` has no target or too few rows for its frames."""
        v = self.values.get(utt)
        if v is None:
            raise ValueError(f"task {self.name}: no target for utterance {utt} in {self.source}")
        if self.kind == "frame_label" and len(v) != num_frames:
            raise ValueError(f"task {self.name}: utterance {utt} has {len(v)} frame labels for {num_frames} frames")
        if self.kind == "frame_vector":
            need = -(-num_frames // self.period)
            if v.shape[0] < need:
                raise ValueError(f"task {self.name}: utterance {utt} has {v.shape[0]} target rows in "
                                 f"{self.source}, but {num_frames} frames need {need} (period {self.period})")

    def chunk(self, utt: str, start: int, length: int, num_frames: int) -> np.ndarray:
        """Targets of frames ``start .. start + length - 1`` as ``(length, K) float32``
        (labels: ``(length,) int64``); frames outside the utterance (past the
        end, or before the start: a negative ``start``) repeat the nearest
        frame's target (their loss is masked)."""
        v = self.values[utt]
        if v.ndim == 0:
            return np.full(length, v, dtype=np.int64)
        frames = np.clip(np.arange(start, start + length), 0, num_frames - 1)
        if self.kind == "frame_label":
            return v[frames]
        if v.ndim == 1:
            return np.broadcast_to(v, (length, self.dim))
        return v[np.minimum(frames // self.period, v.shape[0] - 1)]


def load_labels(name: str, spec: Mapping[str, Any], data_dir: str, utts: List[str],
                classes: Optional[List[str]] = None) -> TaskTargets:
    """Utterance labels (``utt_label``) for ``utts`` from a ``<utt> <label>`` table.

    Args: classes: the training set's classes (None: this is the training
    set; its sorted labels become the classes). A label outside ``classes``
    gets id -100 (ignored).
    Raises: FileNotFoundError, ValueError (an utterance without a label),
    naming the task and file.
    """
    from ..datadir import read_table

    path = source_path(spec["source"], data_dir)
    if not path.is_file():
        raise FileNotFoundError(f"task {name}: target file {path} (tasks.{name}.source = "
                                f"{spec['source']}) does not exist")
    table = read_table(path)
    missing = [u for u in utts if u not in table]
    if missing:
        raise ValueError(f"task {name}: {len(missing)} utterances have no label in {path}, "
                         f"e.g. {', '.join(missing[:3])}")
    if classes is None:
        classes = sorted({table[u] for u in utts})
        if len(classes) < 2:
            raise ValueError(f"task {name}: {path} has {len(classes)} distinct label(s) for the training "
                             f"utterances; a classification task needs at least 2")
    index = {c: i for i, c in enumerate(classes)}
    out = TaskTargets(name, spec["targets"], len(classes), 1, str(path), classes=list(classes))
    for u in utts:
        out.values[u] = np.asarray(index.get(table[u], -100), dtype=np.int64)
    return out


def load_frame_labels(name: str, spec: Mapping[str, Any], frame_phones: Mapping[str, np.ndarray],
                      utts: List[str]) -> TaskTargets:
    """Frame labels (``frame_label``): every frame's phone, mapped to a class.

    Args:
      frame_phones: utterance -> ``(T,) int`` phone ids of the main task's
        alignment (``mtlasr.gmm.ali_to_phones``).
      spec: ``source`` is the phone symbol table (``<phone> <id>``), ``map``
        an optional ``<phone> <class>`` file (``#`` comments allowed).
    Classes: the map's classes, sorted; without a map, every phone of the
    table except ``<eps>`` and disambiguation symbols (``#n``).
    Raises: FileNotFoundError, ValueError (a phone of the alignment missing
    from the table or the map, naming it and the file).
    """
    from ..datadir import read_table

    path = Path(spec["source"])
    if not path.is_file():
        raise FileNotFoundError(f"task {name}: phone table {path} (tasks.{name}.source) does not exist")
    id2phone = {int(i): p for p, i in read_table(path).items()}
    if spec["map"]:
        mpath = Path(spec["map"])
        if not mpath.is_file():
            raise FileNotFoundError(f"task {name}: phone map {mpath} (tasks.{name}.map) does not exist")
        pmap = {}
        for lineno, line in enumerate(mpath.read_text().splitlines(), 1):
            f = line.split("#", 1)[0].split()
            if not f:
                continue
            if len(f) != 2:
                raise ValueError(f"task {name}: {mpath}:{lineno}: expected '<phone> <class>', got {line!r}")
            pmap[f[0]] = f[1]
        classes = sorted(set(pmap.values()))
    else:
        pmap = {p: p for p in id2phone.values() if p != "<eps>" and not p.startswith("#")}
        classes = [id2phone[i] for i in sorted(id2phone) if id2phone[i] in pmap]
    index = {c: k for k, c in enumerate(classes)}
    lut = np.full(max(id2phone) + 1, -1, dtype=np.int64)
    for i, p in id2phone.items():
        if p in pmap:
            lut[i] = index[pmap[p]]
    out = TaskTargets(name, "frame_label", len(classes), 1, str(path), classes=classes)
    for u in utts:
        ph = np.asarray(frame_phones[u], dtype=np.int64)
        if ph.size and (ph.max() >= len(lut) or ph.min() < 0):
            raise ValueError(f"task {name}: utterance {u}: phone id {int(ph.max())} is not in {path}")
        lab = lut[ph]
        if (lab < 0).any():
            bad = id2phone.get(int(ph[lab < 0][0]), "?")
            raise ValueError(f"task {name}: utterance {u}: phone {bad} has no class in "
                             f"{spec['map'] or path}")
        out.values[u] = lab
    return out


def load_targets(name: str, spec: Mapping[str, Any], data_dir: str, utts: Iterable[str],
                 classes: Optional[List[str]] = None,
                 frame_phones: Optional[Mapping[str, np.ndarray]] = None) -> TaskTargets:
    """Read a task's targets for ``utts`` of ``data_dir`` (labels: see
    :func:`load_labels`; frame labels, which need ``frame_phones``: see
    :func:`load_frame_labels`).

    Raises:
      FileNotFoundError: the target file does not exist (naming the task and the file).
      ValueError: an utterance without a target, non-finite values, or
        targets of unequal dimension (naming the utterance and the file).
    """
    import kaldiio

    from ..datadir import read_table

    if spec["targets"] == "frame_label":
        if frame_phones is None:
            raise ValueError(f"task {name}: frame_label targets need the alignment's phones")
        return load_frame_labels(name, spec, frame_phones, list(utts))
    if spec["targets"] in LABEL_KINDS:
        return load_labels(name, spec, data_dir, list(utts), classes)
    path = source_path(spec["source"], data_dir)
    if not path.is_file():
        raise FileNotFoundError(f"task {name}: target file {path} (tasks.{name}.source = "
                                f"{spec['source']}) does not exist")
    table = read_table(path)
    kind = spec["targets"]
    utts = list(utts)
    key = {u: u for u in utts}
    if kind == "spk_vector":
        u2s_path = Path(str(data_dir)) / "utt2spk"
        u2s = read_table(u2s_path)
        no_spk = [u for u in utts if u not in u2s]
        if no_spk:
            raise ValueError(f"task {name}: utterance {no_spk[0]} has no speaker in {u2s_path}")
        key = {u: u2s[u] for u in utts}
    out = TaskTargets(name, kind, 0, spec["period"], str(path))
    missing = [u for u in utts if key[u] not in table]
    if missing:
        raise ValueError(f"task {name}: {len(missing)} utterances have no target in {path}, "
                         f"e.g. {', '.join(missing[:3])}" + (f" (speaker {key[missing[0]]})" if kind == "spk_vector" else ""))
    cache: Dict[str, np.ndarray] = {}
    for u in utts:
        if key[u] in cache:
            out.values[u] = cache[key[u]]
            continue
        try:
            v = np.asarray(kaldiio.load_mat(table[key[u]]), dtype=np.float32)
        except Exception as e:  # kaldiio: a truncated or missing ark
            raise ValueError(f"task {name}: {path}: utterance {u}: cannot read {table[key[u]]}: {e}") from None
        want_ndim = 2 if kind == "frame_vector" else 1
        if v.ndim != want_ndim:
            raise ValueError(f"task {name}: {path}: utterance {u}: expected a "
                             f"{'vector' if want_ndim == 1 else 'matrix'}, got shape {v.shape}")
        if not np.all(np.isfinite(v)):
            raise ValueError(f"task {name}: {path}: utterance {u}: target has NaN or Inf values")
        k = v.shape[-1]
        if out.dim == 0:
            out.dim = k
        elif k != out.dim:
            raise ValueError(f"task {name}: {path}: utterance {u}: dimension {k}, others have {out.dim}")
        out.values[u] = cache[key[u]] = v
    return out
