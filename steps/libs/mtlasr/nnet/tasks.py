"""Auxiliary tasks: declaration, targets on disk, and losses.

A task is data + targets + a mapping (seed 001, Meyer's survey of MTL in
ASR). Each auxiliary task is declared in the ``tasks`` section of the
training YAML, keyed by its name::

    tasks:
      ivector:                    # seed 000: i-vector regression
        targets: utt_vector       # one vector per utterance, the target of every frame
        source: exp/ivectors_{set}/ivectors.scp
        fork: last                # the shared layer the head reads: first | mid | last | 1..L
        hidden: []                # hidden layer sizes of the head (ReLU), [] = linear head
        loss: mse
        weight: 1.0e-4            # lambda: total loss = CE + sum_k lambda_k * loss_k

``source`` is a path template: ``{data}`` is replaced by the data dir being
trained or validated on (``data/train``) and ``{set}`` by its base name
(``train``), so one declaration serves the training and the validation set.

Target kinds:

- ``utt_vector``: an scp of ``(K,)`` vectors keyed by utterance (Kaldi's
  ``ivectors.scp``); every frame of the utterance has that target.
- ``spk_vector``: an scp of ``(K,)`` vectors keyed by speaker (Kaldi's
  ``spk_ivectors.scp``), mapped to utterances through ``{data}/utt2spk``.
- ``frame_vector``: an scp of ``(ceil(T / period), K)`` matrices (Kaldi's
  ``ivector_online.scp`` with ``--ivector-period``); frame t has row
  ``t // period``.

Every auxiliary head is dropped at decoding; only ``main`` is used.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping

import numpy as np
import torch

TARGET_KINDS = ("utt_vector", "spk_vector", "frame_vector")
LOSSES = ("mse",)
FORK_NAMES = ("first", "mid", "last")

TASK_DEFAULTS: Dict[str, Any] = {
    "targets": None,   # utt_vector | spk_vector | frame_vector
    "source": None,    # path template with {data} / {set}
    "period": 1,       # frame_vector: frames per target row (Kaldi's --ivector-period)
    "fork": "last",    # first | mid | last | 1-based layer index
    "hidden": [],      # hidden layer sizes of the head
    "loss": "mse",
    "weight": 1.0,     # lambda
}


def task_spec(name: str, spec: Mapping[str, Any], where: str = "tasks") -> Dict[str, Any]:
    """A task declaration completed with the defaults and checked.

    Raises:
      KeyError: an unknown field (naming it and the task).
      ValueError: a missing or invalid value (naming the task and field).
    """
    if name == "main":
        raise ValueError(f"{where}: 'main' is the phone-state task and cannot be redeclared")
    out = copy.deepcopy(TASK_DEFAULTS)
    for k, v in (spec or {}).items():
        if k not in out:
            raise KeyError(f"{where}.{name}: unknown field '{k}' (known: {', '.join(sorted(out))})")
        out[k] = v
    if out["targets"] not in TARGET_KINDS:
        raise ValueError(f"{where}.{name}.targets: '{out['targets']}' is not one of {', '.join(TARGET_KINDS)}")
    if not out["source"]:
        raise ValueError(f"{where}.{name}.source: the target file is not given")
    if out["loss"] not in LOSSES:
        raise ValueError(f"{where}.{name}.loss: '{out['loss']}' is not one of {', '.join(LOSSES)}")
    if not isinstance(out["period"], int) or out["period"] < 1:
        raise ValueError(f"{where}.{name}.period: must be a positive integer, got {out['period']!r}")
    if not isinstance(out["hidden"], list) or not all(isinstance(h, int) and h > 0 for h in out["hidden"]):
        raise ValueError(f"{where}.{name}.hidden: must be a list of positive layer sizes, got {out['hidden']!r}")
    try:
        out["weight"] = float(out["weight"])
    except (TypeError, ValueError):
        raise ValueError(f"{where}.{name}.weight: not a number: {out['weight']!r}") from None
    if not math.isfinite(out["weight"]) or out["weight"] < 0:
        raise ValueError(f"{where}.{name}.weight: must be finite and >= 0, got {out['weight']}")
    return out


def resolve_fork(fork: Any, num_layers: int, task: str = "?") -> int:
    """1-based index of the shared layer a head reads.

    ``first`` = 1, ``mid`` = ceil(L / 2), ``last`` = L (seed 002's IN, MID
    and OUT), or an explicit index in 1..L.

    Raises: ValueError naming the task when the layer does not exist.
    """
    if fork == "first":
        return 1
    if fork == "mid":
        return (num_layers + 1) // 2
    if fork == "last":
        return num_layers
    if isinstance(fork, int) and not isinstance(fork, bool) and 1 <= fork <= num_layers:
        return fork
    raise ValueError(f"tasks.{task}.fork: layer {fork!r} does not exist (the model has {num_layers} "
                     f"shared layers: use first, mid, last or 1..{num_layers})")


def source_path(template: str, data_dir: str) -> Path:
    """The target file of a data dir: ``{data}`` -> data dir, ``{set}`` -> its base name."""
    d = str(data_dir).rstrip("/")
    return Path(template.replace("{data}", d).replace("{set}", Path(d).name))


@dataclass
class TaskTargets:
    """Targets of one auxiliary task for the utterances of one data set.

    Attributes:
      name, kind, period: from the declaration.
      dim: target dimension K.
      values: utterance -> ``(K,)`` (utt_vector) or ``(rows, K)`` (frame_vector) float32.
      source: the file they were read from (for messages).
    """

    name: str
    kind: str
    dim: int
    period: int
    source: str
    values: Dict[str, np.ndarray] = field(default_factory=dict)

    def check(self, utt: str, num_frames: int) -> None:
        """Raise ValueError if ``utt`` has no target or too few rows for its frames."""
        v = self.values.get(utt)
        if v is None:
            raise ValueError(f"task {self.name}: no target for utterance {utt} in {self.source}")
        if self.kind == "frame_vector":
            need = -(-num_frames // self.period)
            if v.shape[0] < need:
                raise ValueError(f"task {self.name}: utterance {utt} has {v.shape[0]} target rows in "
                                 f"{self.source}, but {num_frames} frames need {need} (period {self.period})")

    def chunk(self, utt: str, start: int, length: int, num_frames: int) -> np.ndarray:
        """Targets of frames ``start .. start + length - 1`` as ``(length, K) float32``;
        frames past the end repeat the last frame's target (their loss is masked)."""
        v = self.values[utt]
        if v.ndim == 1:
            return np.broadcast_to(v, (length, self.dim))
        frames = np.minimum(np.arange(start, start + length), num_frames - 1)
        return v[np.minimum(frames // self.period, v.shape[0] - 1)]


def load_targets(name: str, spec: Mapping[str, Any], data_dir: str, utts: Iterable[str]) -> TaskTargets:
    """Read a task's targets for ``utts`` of ``data_dir``.

    Raises:
      FileNotFoundError: the target file does not exist (naming the task and the file).
      ValueError: an utterance without a target, non-finite values, or
        targets of unequal dimension (naming the utterance and the file).
    """
    import kaldiio

    from ..datadir import read_table

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
        v = np.asarray(kaldiio.load_mat(table[key[u]]), dtype=np.float32)
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


def mse_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Half the squared error summed over the K dimensions, averaged over frames.

    Kaldi nnet1's Mse objective (and its multitask loss, which seed 000's
    ``CE + lambda * MSE`` used): E = 1/N sum_t 0.5 ||y_t - t_t||^2.

    Args:
      pred, target: ``(B, C, K)``; mask: ``(B, C)`` bool, the frames that count.
    Returns: a scalar tensor (0 if no frame counts).
    """
    se = 0.5 * ((pred - target) ** 2).sum(-1)
    n = mask.sum()
    return (se * mask).sum() / n.clamp(min=1)


LOSS_FUNCTIONS = {"mse": mse_loss}


def declared_tasks(cfg: Mapping[str, Any]) -> List[str]:
    """Names of the auxiliary tasks in a resolved config, in declaration order."""
    return list((cfg.get("tasks") or {}).keys())
