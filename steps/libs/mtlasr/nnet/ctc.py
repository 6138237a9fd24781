"""The CTC criterion of the shared trainer (``model.criterion: ctc``).

Main loss: connectionist temporal classification (Graves et al., ICML
2006, eq. 14: -ln p(y|x), summed over the alignments by the forward-backward
recursion; ``torch.nn.functional.ctc_loss``), blank = unit 0. A minibatch's
loss is the mean over its transcribed utterances of

- ``model.ctc_norm: utterance`` (default): the per-utterance negative
  log-likelihood, nats per utterance (ESPnet's convention, which seed 004's
  beta weights assume: beta = 20 for a per-utterance language
  cross-entropy next to a per-utterance CTC loss);
- ``model.ctc_norm: token``: the same divided by the utterance's number of
  output units, nats per unit (``torch.nn.functional.ctc_loss``'s "mean",
  as fairseq and transformers fine-tune wav2vec2). Seed 003's loss
  weights compare loss magnitudes (eq. 5 from average losses of 0.43 for
  CTC and 3.14 for AAM-softmax; eqs. 6-7 per update), so they assume this
  one: summed over some 40 letters, CTC would outweigh the speaker loss
  about 20-fold.

Auxiliary losses: the utterance-level targets of a task are repeated over
the valid frames of the layer its head forks from, so the registry's
per-frame and pooled losses (:mod:`mtlasr.nnet.tasks`) apply unchanged.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence, Tuple

import torch
import torch.nn.functional as F

from .encoders import length_mask
from .seqdata import SeqBatch
from .tasks import task_loss


def ctc_loss(logits: torch.Tensor, out_lens: torch.Tensor, y: torch.Tensor,
             y_lens: torch.Tensor) -> torch.Tensor:
    """Per-utterance CTC negative log-likelihood, nats.

    Args:
      logits: ``(B, T', V)`` unnormalised outputs (unit 0 = blank).
      out_lens: ``(B,)`` valid output frames; y: ``(B, U)`` unit ids padded
      with 0; y_lens: ``(B,)`` units per row (all > 0).
    Returns: ``(B,)`` float32; an infeasible row (too few frames) gives +inf.
    """
    logp = torch.log_softmax(logits.float(), dim=-1).transpose(0, 1)
    return F.ctc_loss(logp, y, out_lens, y_lens, blank=0, reduction="none", zero_infinity=False)


def ctc_task_losses(model: torch.nn.Module, batch: SeqBatch,
                    cfg_tasks: Mapping[str, Any]) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
    """Forward pass and every task's loss on a :class:`SeqBatch`.

    Returns: (main logits ``(B, T', V)``, task -> scalar loss with ``main``
    the mean over the transcribed utterances of their CTC loss, nats per
    utterance or, where ``model.ctc_norm`` is ``token``, per output unit (0
    when no utterance is transcribed), the transcribed-utterance mask
    ``(B,)`` bool).

    Raises: FloatingPointError naming the utterance whose CTC loss is
    infinite (it cannot be aligned: the data loader should have skipped it).
    """
    names = ["main"] + list(batch.aux)
    core = getattr(model, "module", model)  # DistributedDataParallel wraps the model
    out = model(batch.x, heads=names, lengths=batch.x_lens)
    logits = out["main"]
    has = batch.y_lens > 0
    if bool(has.any()):
        per = ctc_loss(logits[has], core.output_lengths(batch.x_lens)[has], batch.y[has], batch.y_lens[has])
        if not bool(torch.isfinite(per).all()):
            bad = [u for u, h in zip(batch.utts, has.tolist()) if h][int((~torch.isfinite(per)).nonzero()[0])]
            raise FloatingPointError(f"utterance {bad}: CTC loss is infinite (too few frames for its units)")
        if getattr(core, "ctc_norm", "utterance") == "token":
            per = per / batch.y_lens[has].to(per.dtype)
        main = per.mean()
    else:
        main = logits.sum() * 0.0
    losses = {"main": main}
    for n, (tgt, mask) in aux_frame_targets(core, batch).items():
        losses[n] = task_loss(cfg_tasks[n], out[n], tgt, mask)
    return logits, losses, has


def aux_frame_targets(model: torch.nn.Module, batch: SeqBatch) -> Dict[str, Tuple[torch.Tensor, torch.Tensor]]:
    """Every auxiliary task's utterance targets repeated over the output
    frames of the layer its head forks from, with the mask of the valid ones.

    Args: model: the :class:`~mtlasr.nnet.model.AcousticModel` (not a
    DistributedDataParallel wrapper); batch: a :class:`SeqBatch`.
    Returns: task -> (targets ``(B, T_k)`` int64 or ``(B, T_k, K)`` float32,
    mask ``(B, T_k)`` bool), T_k the fork layer's frames for the padded length.
    """
    out = {}
    t_full = batch.x.shape[1]
    for n, target in batch.aux.items():
        fork = model.forks[n]
        t_k = int(model.output_lengths(torch.tensor([t_full]), fork)[0])
        mask = length_mask(model.output_lengths(batch.x_lens, fork), t_k)
        if target.dim() == 1:
            out[n] = target[:, None].expand(-1, t_k), mask
        else:
            out[n] = target[:, None, :].expand(-1, t_k, -1), mask
    return out


def greedy_units(logits: torch.Tensor, out_lens: torch.Tensor) -> List[List[int]]:
    """Best-path decoding of a batch: argmax per frame, then
    :func:`mtlasr.ctc_decode.ctc_collapse` (repeats merged, blanks dropped).
    logits ``(B, T', V)``, out_lens ``(B,)``."""
    from ..ctc_decode import ctc_collapse

    best = logits.argmax(-1).cpu().numpy()
    return [ctc_collapse(row[:n]) for row, n in zip(best, out_lens.tolist())]


def unit_errors(hyps: Sequence[Sequence[int]], refs: Sequence[Sequence[int]]) -> Tuple[int, int]:
    """(Levenshtein errors, reference units) summed over pairs (kaldialign)."""
    import kaldialign

    err = tot = 0
    for h, r in zip(hyps, refs):
        err += kaldialign.edit_distance(list(r), list(h))["total"]
        tot += len(r)
    return err, tot
