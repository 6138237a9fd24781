"""One minibatch's forward pass and losses, for either criterion (frame
cross-entropy on chunks, CTC on utterances), its FLOPs, and the evaluation
of a model on a whole data set. Used by the training loop
(:mod:`mtlasr.nnet.train`).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from .data import IGNORE, ChunkDataset
from .ddp import sum_over_ranks
from .model import LstmState
from .seqdata import SeqBatch, SequenceDataset
from .tasks import task_loss


def to_device(batch, device: torch.device):
    """A minibatch (chunk tuple ``(x, y, aux)``, with state carry-over
    ``(x, y, aux, reset)``, or :class:`SeqBatch`) on ``device``."""
    if isinstance(batch, SeqBatch):
        return batch.to(device)
    x, y, aux = batch[:3]
    return (x.to(device), y.to(device), {n: t.to(device) for n, t in aux.items()}) + tuple(
        t.to(device) for t in batch[3:])


def task_losses(model: torch.nn.Module, batch, cfg_tasks: Dict[str, Any],
                sl: Optional[slice] = None, state: Optional[LstmState] = None
                ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
    """Forward pass and every task's loss on one minibatch, for either criterion.

    Args:
      batch: a :class:`SeqBatch` (CTC: see
        :func:`mtlasr.nnet.ctc.ctc_task_losses`) or chunks ``(x, y, aux)``:
        x ``(B, W, D)``, y ``(B, C)`` pdf labels (IGNORE = padding), aux:
        task -> ``(B, C, K)`` targets; with state carry-over a fourth item,
        reset ``(B,) bool`` (the streams that start an utterance); sl: the
        output positions that carry labels.
      state: the state carried over from the previous chunks
        (:class:`~mtlasr.nnet.model.LstmState`): its ``reset`` rows are
        zeroed, then it starts this batch and is replaced by the state at
        its end (None: zero initial states).
    Returns: (main logits, task -> scalar loss, the mask of what the main
    loss counts: chunks: the labelled frames ``(B, C)`` (``main`` = mean CE
    per frame); CTC: the transcribed utterances ``(B,)``).
    """
    if isinstance(batch, SeqBatch):
        from .ctc import ctc_task_losses

        return ctc_task_losses(model, batch, cfg_tasks)
    x, y, aux = batch[:3]
    names = ["main"] + [n for n in aux]
    mask = y != IGNORE
    kw = {}
    if state is not None:
        state.reset(batch[3])
        kw["state"] = state
    out = model(x, heads=names, out_slice=sl, mask=mask, **kw)
    logits = out["main"]
    losses = {"main": F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=IGNORE)}
    for n, target in aux.items():
        losses[n] = task_loss(cfg_tasks[n], out[n], target, mask)
    return logits, losses, mask


def step_flops(model: torch.nn.Module, data: ChunkDataset, batch_size: int, device: torch.device,
               cfg_tasks: Dict[str, Any]) -> Tuple[float, int]:
    """The floating-point operations of one training step: forward and
    backward of the main and every auxiliary loss on the first minibatch of
    ``data``, counted by ``torch.utils.flop_counter`` (the matrix products:
    LSTM gates and projections, heads; elementwise work is not counted).
    The model's gradients and the torch RNG are left as they were.

    Returns: (FLOPs, frames with labels in the minibatch); their ratio is the
    cost per training frame, which does not depend on the machine.
    """
    from torch.utils.flop_counter import FlopCounterMode

    batch = to_device(next(data.minibatches(batch_size)), device)
    rng = torch.get_rng_state()
    with FlopCounterMode(display=False) as fc:
        _, losses, mask = task_losses(model, batch, cfg_tasks, getattr(getattr(data, "spec", None), "out_slice", None))
        sum(losses.values()).backward()
    model.zero_grad(set_to_none=True)
    torch.set_rng_state(rng)
    return float(fc.get_total_flops()), int(mask.sum())


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: ChunkDataset, batch_size: int, device: torch.device,
             cfg_tasks: Optional[Dict[str, Any]] = None, rank: int = 0, world_size: int = 1) -> Dict[str, float]:
    """Main loss and accuracy on ``data``, and ``<task>_loss`` for every
    auxiliary task ``data`` has targets for.

    Chunks: frame cross-entropy (nats/frame) and frame accuracy. CTC: loss
    in nats per utterance (per output unit with ``model.ctc_norm: token``),
    and ``acc`` = 1 - the unit error rate of greedy (best-path) decoding,
    with ``unit_errors`` / ``units``.

    With state carry-over (``data.spec.carry``) the chunks of each
    utterance are evaluated in order, the state carried from chunk to
    chunk: the outputs of the whole utterance.

    With ``world_size > 1`` (an initialised process group) each rank
    evaluates every world_size-th minibatch (state carry-over: its own
    streams of every step) and the sums are added up over the ranks: every
    rank returns the figures of the whole of ``data``.
    """
    model.eval()
    tot_loss, tot_correct, tot = 0.0, 0, 0
    aux_tot: Dict[str, float] = {n: 0.0 for n in data.aux}
    aux_n: Dict[str, int] = {n: 0 for n in data.aux}
    sl = getattr(getattr(data, "spec", None), "out_slice", None)
    ctc = isinstance(data, SequenceDataset)
    unit_err = units = 0
    carry = bool(getattr(getattr(data, "spec", None), "carry", False))
    state = LstmState() if carry else None
    batches = data.minibatches(batch_size, rank=rank, world_size=world_size) if carry else (
        b for i, b in enumerate(data.minibatches(batch_size)) if i % world_size == rank)
    for batch in batches:
        if batch is None:  # (carry, world_size > 1) this rank's streams have run out
            continue
        batch = to_device(batch, device)
        logits, losses, mask = task_losses(model, batch, cfg_tasks or {}, sl, state)
        aux = batch.aux if ctc else batch[2]
        n = mask.sum().item()
        tot_loss += losses["main"].item() * n
        for k in aux_tot:
            # labels unseen in training (-100) do not count
            nk = int((mask & (aux[k] != IGNORE)).sum()) if aux[k].dtype == torch.int64 else n
            aux_tot[k] += losses[k].item() * nk
            aux_n[k] += nk
        if ctc:
            from .ctc import greedy_units, unit_errors

            hyps = greedy_units(logits, model.output_lengths(batch.x_lens))
            refs = [r[:n_].tolist() for r, n_ in zip(batch.y.cpu(), batch.y_lens.tolist()) if n_ > 0]
            e, u = unit_errors([h for h, n_ in zip(hyps, batch.y_lens.tolist()) if n_ > 0], refs)
            unit_err, units = unit_err + e, units + u
        else:
            y = batch[1]
            tot_correct += (logits.argmax(-1)[mask] == y[mask]).sum().item()
        tot += n
    model.train()
    if world_size > 1:
        names = list(aux_tot)
        vals = sum_over_ranks([tot_loss, tot_correct, tot, unit_err, units] + [aux_tot[k] for k in names]
                              + [aux_n[k] for k in names], device)
        tot_loss = vals[0]
        tot_correct, tot, unit_err, units = (int(round(x)) for x in vals[1:5])
        aux_tot = dict(zip(names, vals[5:5 + len(names)]))
        aux_n = {k: int(round(x)) for k, x in zip(names, vals[5 + len(names):])}
    acc = 1.0 - unit_err / max(units, 1) if ctc else tot_correct / max(tot, 1)
    res = {"loss": tot_loss / max(tot, 1), "acc": acc, "frames": tot}
    if ctc:
        res.update(unit_errors=unit_err, units=units)
    res.update({f"{k}_loss": v / aux_n[k] for k, v in aux_tot.items() if aux_n[k] > 0})
    return res
