"""Auxiliary tasks: declaration, losses and loss weights (their targets on
disk: :mod:`mtlasr.nnet.targets`).

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
- ``utt_label``: a table ``<utt> <label>`` (``{data}/utt2spk``,
  ``utt2gender``, any utt2X file); classes are the labels of the training
  set, and a validation utterance whose label the training set lacks (a
  held-out speaker) is left out of that task's validation loss.
- ``frame_label``: the phone of every frame in the main task's alignment,
  as a monophone class or mapped through ``map`` (a ``<phone> <class>``
  file, e.g. ``conf/broad_classes.map``); ``source`` is the phone symbol
  table of the alignment (``data/lang/phones.txt``).
- ``frame_vector``: an scp of ``(ceil(T / period), K)`` matrices (Kaldi's
  ``ivector_online.scp`` with ``--ivector-period``); frame t has row
  ``t // period``.

Utterance-level targets are predicted at every frame (``pooling: none``,
the speaker-aware LSTM of seed 000's reference [25]) or once per chunk
from the head's hidden representation pooled over the chunk's frames
(``mean``, ``max`` or ``lse``: LogSumExp with temperature ``tau``, seed 002
sec. 3), or, with the wav2vec2 encoder and ``model.cls_token``, from the
CLS token's output (``first``: seed 003's first+cls pooling), or, with
``model.criterion: ctc``, the mean over the frames whose CTC output peaks at
the blank (``ctc_blank``) or at a unit (``ctc_nonblank``; seed 003 sec.
3.1.4). ``split: d_k`` gives the head the first d_k dimensions of the last
layer and the main head the others (seed 003 sec. 3.1.3, eq. 1).

``branch: k`` (wav2vec2 encoder only) gives the head its own copy of the
shared layers after layer k, initialised as they are, so that the task
shares only layers 1..k with the main task (seed 003 sec. 3.1.2, the
branched encoder; ``branch: 4`` shares the CNN and 3 transformer layers).

``grl: true`` puts a gradient reversal layer in front of the head (Ganin
and Lempitsky, 2015; seeds 002 and 004): the head learns the task while the
shared layers receive the reversed gradient, scaled by the task weight, so
they unlearn it (adversarial training). ``schedule`` sets that weight over
training: ``static`` (``weight``), ``ramp`` (``weight * (2 / (1 +
exp(-gamma p)) - 1)`` with p the fraction of training done, seeds 002 and
004), or ``dynamic`` (seed 003 eqs. 6-7: every loss is rescaled to the
smallest loss of the minibatch, with the scales not differentiated).

Losses: ``mse`` for vector targets; ``ce`` (softmax cross-entropy) or
``aam`` for labels. ``aam`` is the additive angular margin softmax
(ArcFace, Deng et al., CVPR 2019, eq. 3; for speakers Liu et al.,
Interspeech 2019), seed 003's speaker loss: the head's output layer gives
cosines between its (pooled) embedding and one weight vector per class,
the target class's angle is widened by ``margin`` (radians) and all are
scaled by ``scale`` before the cross-entropy (seed 003 sec. 4.2: scale 30,
margin 0.2). It needs a pooled head (one embedding per utterance).

Every auxiliary head is dropped at decoding; only ``main`` is used.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Dict, List, Mapping, Tuple

import torch

TARGET_KINDS = ("utt_vector", "spk_vector", "frame_vector", "utt_label", "frame_label")
LOSSES = ("mse", "ce", "aam")
FORK_NAMES = ("first", "mid", "last")
POOLINGS = ("none", "mean", "max", "lse", "first", "ctc_blank", "ctc_nonblank")
SCHEDULES = ("static", "ramp", "dynamic")
LABEL_KINDS = ("utt_label", "frame_label")

TASK_DEFAULTS: Dict[str, Any] = {
    "targets": None,   # utt_vector | spk_vector | frame_vector
    "source": None,    # path template with {data} / {set}
    "period": 1,       # frame_vector: frames per target row (Kaldi's --ivector-period)
    "map": None,       # frame_label: <phone> <class> file (none: one class per phone)
    "fork": "last",    # first | mid | last | 1-based layer index
    "hidden": [],      # hidden layer sizes of the head
    "loss": "mse",     # mse (vectors) | ce (labels)
    "pooling": "none",  # utterance targets: none (every frame) | mean | max | lse (per chunk)
    "tau": 1.0,        # LogSumExp temperature
    "grl": False,      # gradient reversal layer in front of the head (adversarial)
    "schedule": "static",  # static | ramp | dynamic
    "gamma": 10.0,     # ramp steepness
    "weight": 1.0,     # lambda (the ramp's final value)
    "branch": 0,       # k >= 2: the head reads its own copy of the shared layers after layer k (wav2vec2)
    "split": 0,        # d_k > 0: the head reads dimensions [0, d_k) of the last layer, the main head the rest
    "margin": 0.2,     # aam: additive angular margin m, radians (seed 003: 0.2)
    "scale": 30.0,     # aam: logit scale s (seed 003: 30)
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
    want = ("ce", "aam") if out["targets"] in LABEL_KINDS else ("mse",)
    if out["loss"] not in want:
        raise ValueError(f"{where}.{name}.loss: {out['targets']} targets need loss {' or '.join(want)}, "
                         f"not {out['loss']}")
    if out["loss"] == "aam" and (out["pooling"] == "none" or out["targets"] != "utt_label"):
        raise ValueError(f"{where}.{name}.loss: aam needs utt_label targets and a pooled head "
                         f"(pooling mean, max, lse or first), got {out['targets']} with pooling {out['pooling']}")
    if out["pooling"] not in POOLINGS:
        raise ValueError(f"{where}.{name}.pooling: '{out['pooling']}' is not one of {', '.join(POOLINGS)}")
    if out["pooling"] != "none" and out["targets"] in ("frame_vector", "frame_label"):
        raise ValueError(f"{where}.{name}.pooling: frame targets cannot be pooled")
    if out["schedule"] not in SCHEDULES:
        raise ValueError(f"{where}.{name}.schedule: '{out['schedule']}' is not one of {', '.join(SCHEDULES)}")
    if not isinstance(out["grl"], bool):
        raise ValueError(f"{where}.{name}.grl: must be true or false, got {out['grl']!r}")
    if out["grl"] and out["schedule"] == "dynamic":
        raise ValueError(f"{where}.{name}: dynamic weighting balances losses and cannot drive a "
                         f"gradient reversal layer (use static or ramp)")
    for k in ("tau", "gamma", "scale"):
        try:
            out[k] = float(out[k])
        except (TypeError, ValueError):
            raise ValueError(f"{where}.{name}.{k}: not a number: {out[k]!r}") from None
        if not out[k] > 0:
            raise ValueError(f"{where}.{name}.{k}: must be > 0, got {out[k]}")
    try:
        out["margin"] = float(out["margin"])
    except (TypeError, ValueError):
        raise ValueError(f"{where}.{name}.margin: not a number: {out['margin']!r}") from None
    if not 0 <= out["margin"] < math.pi / 2:
        raise ValueError(f"{where}.{name}.margin: must be in [0, pi/2) radians, got {out['margin']}")
    for k in ("branch", "split"):
        if not isinstance(out[k], int) or isinstance(out[k], bool) or out[k] < 0:
            raise ValueError(f"{where}.{name}.{k}: must be 0 (none) or a positive number, got {out[k]!r}")
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


def counted_labels(target: torch.Tensor, mask: torch.Tensor, pooled: bool) -> torch.Tensor:
    """The class labels a label loss (:func:`ce_loss`, :func:`aam_loss`)
    counts, -100 for the others.

    Args: target ``(B, C)`` int64 class ids (-100 = unknown); mask ``(B, C)``
    bool, the frames that count; pooled: one label per sequence (a pooled
    head): the label of its first counted frame, -100 where no frame counts.
    Returns: ``(B * C,)`` per frame, or ``(B,)`` pooled, int64.
    """
    t = target.masked_fill(~mask, -100)
    if not pooled:
        return t.reshape(-1)
    first = mask.float().argmax(1)
    return t.gather(1, first[:, None])[:, 0].masked_fill(~mask.any(1), -100)


def ce_loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cross-entropy (nats) averaged over the frames that count, or over the
    sequences for a pooled head.

    Args:
      logits: ``(B, C, K)`` per frame, or ``(B, K)`` pooled; target: ``(B, C)``
      int64 class ids (-100 = ignore); mask: ``(B, C)`` bool.
    Returns: a scalar tensor (0 if nothing counts).
    """
    t = counted_labels(target, mask, logits.dim() == 2)
    if logits.dim() != 2:
        logits = logits.reshape(-1, logits.shape[-1])
    if bool((t == -100).all()):
        return logits.sum() * 0.0
    return torch.nn.functional.cross_entropy(logits, t, ignore_index=-100)


def aam_logits(cos: torch.Tensor, target: torch.Tensor, margin: float, scale: float) -> torch.Tensor:
    """Additive angular margin logits (ArcFace, Deng et al. 2019, eq. 3):
    s cos(theta_y + m) for the target class y, s cos(theta_j) for the others.

    Where theta_y + m would pass pi (cos(theta + m) is no longer decreasing),
    the target logit is s (cos theta_y - m sin m), which keeps the penalty
    monotonic (the usual ArcFace fallback).

    Args:
      cos: ``(B, K)`` cosines in [-1, 1]; target: ``(B,)`` int64 class ids
        (-100 = ignore: that row gets no margin); margin m (radians), scale s.
    Returns: ``(B, K)`` float32 logits.
    """
    cos = cos.float().clamp(-1.0, 1.0)
    sin = torch.sqrt((1.0 - cos * cos).clamp(min=1e-12))
    phi = cos * math.cos(margin) - sin * math.sin(margin)
    phi = torch.where(cos > math.cos(math.pi - margin), phi, cos - math.sin(margin) * margin)
    onehot = torch.zeros_like(cos, dtype=torch.bool)
    ok = target >= 0
    onehot[ok.nonzero()[:, 0], target[ok]] = True
    return scale * torch.where(onehot, phi, cos)


def aam_loss(cos: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, margin: float = 0.2,
             scale: float = 30.0) -> torch.Tensor:
    """AAM-softmax loss: cross-entropy (nats) of :func:`aam_logits`, averaged
    over the sequences (a pooled head's ``(B, K)`` cosines; target and mask
    as for :func:`ce_loss`). Returns a scalar tensor (0 if nothing counts).
    Raises: ValueError for per-frame cosines (``aam`` needs a pooled head)."""
    if cos.dim() != 2:
        raise ValueError("aam loss: needs a pooled head (one embedding per utterance)")
    t = counted_labels(target, mask, pooled=True)
    if bool((t == -100).all()):
        return cos.sum() * 0.0
    return torch.nn.functional.cross_entropy(aam_logits(cos, t, margin, scale), t, ignore_index=-100)


LOSS_FUNCTIONS = {"mse": mse_loss, "ce": ce_loss, "aam": aam_loss}


def task_count(spec: Mapping[str, Any], target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """How many terms :func:`task_loss` averages over for these targets:
    the counted frames (``mse``), or the counted labels of the frames, or of
    the sequences for a pooled head (``ce``, ``aam``). Multi-process
    training weights each process's loss by its share of this count.

    Args: spec: the task's declaration (``loss``, ``pooling``); target and
    mask as for :func:`task_loss`. Returns: a 0-dim int64 tensor (0 when
    nothing counts).
    """
    if spec["loss"] == "mse":
        return mask.sum()
    return (counted_labels(target, mask, spec["pooling"] != "none") != -100).sum()


def task_loss(spec: Mapping[str, Any], pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The loss of one auxiliary task, as its declaration ``spec`` says
    (``loss``, and ``margin`` / ``scale`` for aam). Shapes: see
    :func:`mse_loss`, :func:`ce_loss`, :func:`aam_loss`."""
    if spec["loss"] == "aam":
        return aam_loss(pred, target, mask, spec["margin"], spec["scale"])
    return LOSS_FUNCTIONS[spec["loss"]](pred, target, mask)


def ramp(progress: float, gamma: float) -> float:
    """lambda(p) = 2 / (1 + exp(-gamma p)) - 1 for training progress p in [0, 1]
    (Ganin and Lempitsky 2015, sec. 5; seed 002 sec. 4, seed 004 sec. 2):
    0 at the start, rising towards 1."""
    return 2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0


def dynamic_weights(losses: Mapping[str, torch.Tensor]) -> Dict[str, float]:
    """Seed 003 eqs. 6-7, for any number of losses: lambda_k = min_j L_j / L_k,
    so every weighted loss equals the smallest one. The weights are plain
    floats: they are not differentiated through.

    Args: losses: name -> scalar loss (positive). Returns: name -> weight.
    """
    vals = {k: float(v.detach()) for k, v in losses.items()}
    m = min(vals.values())
    return {k: (m / v if v > 0 else 1.0) for k, v in vals.items()}


def scheduled_lambda(spec: Mapping[str, Any], progress: float) -> float:
    """A task's lambda at training progress p in [0, 1]: ``weight``, or
    ``weight * ramp(p, gamma)`` for ``schedule: ramp`` (not for dynamic)."""
    return spec["weight"] * (ramp(progress, spec["gamma"]) if spec["schedule"] == "ramp" else 1.0)


def step_lambdas(cfg_tasks: Mapping[str, Any], progress: float) -> Dict[str, float]:
    """The scheduled lambda of every task at one training step, computed once
    and used both as loss weight and as gradient-reversal scale.

    Args:
      cfg_tasks: resolved task declarations; progress: fraction of training
        done, in [0, 1].
    Returns: task -> :func:`scheduled_lambda` (tasks with ``schedule:
    dynamic`` are left out: their weight depends on the step's losses).
    """
    return {k: scheduled_lambda(s, progress) for k, s in cfg_tasks.items() if s["schedule"] != "dynamic"}


def task_weights(cfg_tasks: Mapping[str, Any], losses: Mapping[str, torch.Tensor],
                 lambdas: Mapping[str, float], main_weight: float = 1.0) -> Tuple[Dict[str, float], Dict[str, float]]:
    """Loss weights and gradient-reversal scales of one training step.

    Args:
      cfg_tasks: resolved task declarations; losses: name -> loss, with
        ``main``; lambdas: the step's :func:`step_lambdas`.
    Returns:
      (weights, grl_scales): weights name -> multiplier of the loss in the
      total (``main`` included: ``main_weight``, ``train.main_weight``,
      unless dynamic weighting is used);
      grl_scales task -> the reversal scale of tasks with ``grl``.

    A task without ``grl`` has loss weight ``weight`` (static), ``weight *
    ramp(p)`` or the dynamic weight. A task with ``grl`` always has loss
    weight 1 (its head learns the task at full rate) and its scheduled
    lambda scales the reversed gradient into the shared layers, so those
    minimise CE - lambda * L_k (seed 002 eq. 1).
    """
    weights: Dict[str, float] = {"main": float(main_weight)}
    scales: Dict[str, float] = {}
    dyn = [k for k, s in cfg_tasks.items() if s["schedule"] == "dynamic" and k in losses]
    if dyn:
        weights.update(dynamic_weights({k: losses[k] for k in ["main"] + dyn}))
    for k, s in cfg_tasks.items():
        if k not in losses or k in dyn:
            continue
        if s["grl"]:
            weights[k], scales[k] = 1.0, lambdas[k]
        else:
            weights[k] = lambdas[k]
    return weights, scales


def declared_tasks(cfg: Mapping[str, Any]) -> List[str]:
    """Names of the auxiliary tasks in a resolved config, in declaration order."""
    return list((cfg.get("tasks") or {}).keys())
