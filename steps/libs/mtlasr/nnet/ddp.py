"""Multi-process training (torchrun, DistributedDataParallel): what the
ranks exchange so that N processes train the model of one process with N
times the minibatch.

DistributedDataParallel averages the ranks' gradients. A loss that is a
mean over a rank's own terms (labelled frames, transcribed utterances,
counted labels) then gets the gradient of the mean of the ranks' means,
which is not the mean over all their terms when the ranks' counts differ
(padding, untranscribed utterances, length buckets). Weighting each rank's
loss by world_size * its count / the count over all ranks makes it so:
(1/N) sum_r (N c_r / C) grad L_r = grad (sum_r c_r L_r / C).
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import torch
import torch.distributed as dist

from .seqdata import SeqBatch
from .tasks import task_count


def loss_counts(model: torch.nn.Module, batch, cfg_tasks: Dict[str, Any],
                mask: torch.Tensor) -> Dict[str, torch.Tensor]:
    """How many terms each loss of :func:`mtlasr.nnet.evaluate.task_losses` averages over on
    ``batch``: ``main``: ``mask.sum()`` (labelled frames; CTC: transcribed
    utterances); every auxiliary task: :func:`mtlasr.nnet.tasks.task_count`
    (counted frames, labels or pooled sequences).

    Args: model: the :class:`AcousticModel` (CTC: for the fork layers'
    lengths); batch and mask: as given to and returned by ``task_losses``.
    Returns: name -> 0-dim int64 tensor on the batch's device.
    """
    if isinstance(batch, SeqBatch):
        from .ctc import aux_frame_targets

        aux = aux_frame_targets(getattr(model, "module", model), batch)
    else:
        aux = {n: (t, mask) for n, t in batch[2].items()}
    out = {"main": mask.sum()}
    out.update({n: task_count(cfg_tasks[n], t, m) for n, (t, m) in aux.items()})
    return out


def sum_over_ranks(values: Sequence[float], device: torch.device) -> List[float]:
    """The sums of ``values`` over the ranks of the initialised process
    group (one all_reduce of a float64 tensor on ``device``: NCCL needs a
    GPU one); the same list on every rank."""
    v = torch.tensor([float(x) for x in values], dtype=torch.float64, device=device)
    dist.all_reduce(v)
    return v.tolist()


def share_losses(losses: Dict[str, torch.Tensor], counts: Dict[str, torch.Tensor],
                 world_size: int) -> Tuple[Dict[str, torch.Tensor], Dict[str, float]]:
    """Every loss over all ranks, and this rank's share of it (one
    all_reduce in the initialised process group of ``world_size`` ranks).

    Args: losses: name -> this rank's loss (0-dim), a mean over
    ``counts[name]`` terms (0-dim int64, e.g. :func:`loss_counts`; 0 for a
    rank with nothing in this step). Returns: (name -> the mean over every rank's terms (0-dim
    float64; 0 where no rank has any), name -> world_size * this rank's
    count / the count over all ranks (0.0 where that is 0)): with the
    losses multiplied by their shares, the gradient averaged over the
    ranks is that of the losses over all ranks.
    """
    names = list(losses)
    c = torch.stack([counts[k] for k in names]).to(torch.float64)
    v = torch.cat([c, torch.stack([losses[k].detach() for k in names]).to(torch.float64) * c])
    dist.all_reduce(v)
    sums = v[len(names):]
    mine, tot = c.tolist(), v[: len(names)].tolist()
    glob = {k: sums[i] / tot[i] if tot[i] > 0 else sums[i] * 0 for i, k in enumerate(names)}
    return glob, {k: world_size * mine[i] / tot[i] if tot[i] > 0 else 0.0 for i, k in enumerate(names)}
