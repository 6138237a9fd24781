"""Chunked training data for unidirectional LSTM acoustic models.

Seed 000 sec. 5.2 (after Kaldi's nnet1 LSTM recipe): sequences of
``chunk`` training labels, the network output delayed by ``delay`` frames,
and ``left`` frames of left context in front of each chunk. A chunk that
starts at frame s reads input frames ``s - left .. s + chunk + delay - 1``
(edge frames repeated beyond the utterance) and is trained on the labels of
frames ``s .. s + chunk - 1``, read at output positions
``left + delay .. left + delay + chunk - 1``. Decoding uses the same chunks,
so training and test see identical contexts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

if TYPE_CHECKING:
    from .targets import TaskTargets

IGNORE = -100  # label of padding positions (ignored by the loss)


@dataclass(frozen=True)
class ChunkSpec:
    """Chunk geometry, in frames of 10 ms."""

    chunk: int = 20
    left: int = 40
    delay: int = 5

    @property
    def width(self) -> int:
        """Input frames per chunk."""
        return self.left + self.chunk + self.delay

    @property
    def out_slice(self) -> slice:
        """Output positions that carry the chunk's labels."""
        return slice(self.left + self.delay, self.left + self.delay + self.chunk)

    def starts(self, num_frames: int) -> List[int]:
        """Chunk start frames tiling ``num_frames`` (the last chunk may be partial)."""
        return list(range(0, num_frames, self.chunk))

    def input_index(self, start: int, num_frames: int) -> np.ndarray:
        """Frame indices ``(width,)`` read by the chunk at ``start`` (clipped to the utterance)."""
        return np.clip(np.arange(start - self.left, start + self.chunk + self.delay), 0, num_frames - 1)


def utterance_chunks(feats: np.ndarray, spec: ChunkSpec) -> torch.Tensor:
    """All chunks of one utterance as a batch.

    Args: feats ``(T, D) float32``. Returns ``(num_chunks, width, D) float32``.
    """
    t = feats.shape[0]
    idx = np.stack([spec.input_index(s, t) for s in spec.starts(t)])
    return torch.from_numpy(np.ascontiguousarray(feats[idx]))


def unchunk(outputs: torch.Tensor, spec: ChunkSpec, num_frames: int) -> torch.Tensor:
    """Per-frame outputs from chunked network outputs.

    Args: outputs ``(num_chunks, width, K)``. Returns ``(num_frames, K)``.
    """
    return outputs[:, spec.out_slice].reshape(-1, outputs.shape[-1])[:num_frames]


def label_mismatch(labels: Optional[np.ndarray], num_frames: int) -> Optional[str]:
    """Why an utterance of ``num_frames`` frames with frame ``labels``
    ``(T,)`` (None: no alignment) cannot be trained on; None if it can."""
    if labels is None:
        return "no alignment"
    if len(labels) != num_frames:
        return f"{len(labels)} labels for {num_frames} frames"
    return None


class ChunkDataset:
    """In-memory chunks of a data set with frame labels.

    Args:
      feats: utterance -> ``(T, D) float32`` features.
      labels: utterance -> ``(T,) int64`` frame labels (pdf ids); utterances
        without labels, or whose label count differs from T, are dropped and
        reported in ``skipped``.
      spec: chunk geometry.
      aux: auxiliary task targets (:class:`mtlasr.nnet.targets.TaskTargets`),
        task name -> targets; every kept utterance must have one.

    Raises: ValueError naming the task and utterance when a kept utterance
    has no auxiliary target (or too few target rows).
    """

    def __init__(self, feats: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray], spec: ChunkSpec,
                 aux: Optional[Mapping[str, "TaskTargets"]] = None):
        self.spec = spec
        self.aux = dict(aux or {})
        self.utts: List[str] = []
        self.skipped: Dict[str, str] = {}
        self.feats: List[np.ndarray] = []
        self.labels: List[np.ndarray] = []
        self.index: List[Tuple[int, int]] = []
        for utt, x in feats.items():
            y = labels.get(utt)
            why = label_mismatch(y, x.shape[0])
            if why:
                self.skipped[utt] = why
                continue
            for t in self.aux.values():
                t.check(utt, x.shape[0])
            i = len(self.utts)
            self.utts.append(utt)
            self.feats.append(np.ascontiguousarray(x, dtype=np.float32))
            self.labels.append(np.asarray(y, dtype=np.int64))
            self.index.extend((i, s) for s in spec.starts(x.shape[0]))
        self.num_frames = int(sum(len(y) for y in self.labels))

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, items: Sequence[Tuple[int, int]]) -> Tuple[torch.Tensor, torch.Tensor, Dict[str, torch.Tensor]]:
        """Inputs ``(B, width, D) float32``, labels ``(B, chunk) int64`` (IGNORE
        past the end), and auxiliary targets, task -> ``(B, chunk, K) float32``
        (class labels: ``(B, chunk) int64``)
        (frames past the end repeat the last target; the loss masks them)."""
        spec = self.spec
        xs, ys = [], []
        auxs: Dict[str, list] = {n: [] for n in self.aux}
        for i, s in items:
            x, y = self.feats[i], self.labels[i]
            t = x.shape[0]
            xs.append(x[spec.input_index(s, t)])
            lab = np.full(spec.chunk, IGNORE, dtype=np.int64)
            seg = y[s : s + spec.chunk]
            lab[: len(seg)] = seg
            ys.append(lab)
            for n, tt in self.aux.items():
                auxs[n].append(tt.chunk(self.utts[i], s, spec.chunk, t))
        return (torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys)),
                {n: torch.from_numpy(np.stack(v) if self.aux[n].classes is not None
                                     else np.stack(v).astype(np.float32)) for n, v in auxs.items()})

    def minibatches(self, batch_size: int, seed: Optional[int] = None, rank: int = 0,
                    world_size: int = 1) -> Iterator[Tuple[torch.Tensor, torch.Tensor, Dict[str, torch.Tensor]]]:
        """Minibatches of ``batch_size`` chunks, shuffled with ``seed`` (None: in
        order). With ``world_size > 1`` each rank takes every world_size-th batch,
        so that the world_size batches of one step are together the batch of one
        process with ``world_size * batch_size``; every rank yields
        ceil(batches / world_size) items, None where the last step has no
        batch left for it (the trainer gives that step zero weight)."""
        order = np.arange(len(self.index))
        if seed is not None:
            np.random.default_rng(seed).shuffle(order)
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        for k in range(rank, len(batches) + (-len(batches)) % world_size, world_size):
            yield self.batch([self.index[j] for j in batches[k]]) if k < len(batches) else None


def pdf_counts(labels: Mapping[str, np.ndarray], num_pdfs: int) -> np.ndarray:
    """Frame count of every pdf ``(num_pdfs,) float64`` (for the priors)."""
    counts = np.zeros(num_pdfs, dtype=np.float64)
    for y in labels.values():
        counts += np.bincount(np.asarray(y, dtype=np.int64), minlength=num_pdfs)[:num_pdfs]
    return counts


def log_priors(counts: np.ndarray, floor: float = 1e-8) -> np.ndarray:
    """log P(s) from pdf counts ``(S,)``; unseen pdfs get probability ``floor``.

    The hybrid decoder subtracts these from network log-posteriors (Bourlard
    and Morgan, 1994, ch. 7).
    """
    p = counts / max(counts.sum(), 1.0)
    return np.log(np.maximum(p, floor)).astype(np.float32)
