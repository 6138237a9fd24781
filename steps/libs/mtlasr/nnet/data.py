"""Chunked training data for unidirectional LSTM acoustic models.

Seed 000 sec. 5.2 (after Kaldi's nnet1 LSTM recipe): sequences of
``chunk`` training labels, the network output delayed by ``delay`` frames,
and ``left`` frames of left context in front of each chunk. A chunk that
starts at frame s reads input frames ``s - left .. s + chunk + delay - 1``
(edge frames repeated beyond the utterance) and is trained on the labels of
frames ``s .. s + chunk - 1``, read at output positions
``left + delay .. left + delay + chunk - 1``. Decoding uses the same chunks,
so training and test see identical contexts.

State carry-over (``chunk.carry: true``; Kaldi nnet1's multi-stream
training, ``nnet-train-multistream``): each of the minibatch's B rows is a
stream that runs through one utterance after another, chunk after chunk,
and the LSTM state at the end of a chunk starts the stream's next chunk
(detached from the graph: truncated back-propagation through time), so no
left context is recomputed. A chunk is ``chunk`` input frames
``s .. s + chunk - 1`` (the last frame repeated past the end), trained on
the labels of frames ``s - delay .. s + chunk - 1 - delay`` (those inside
the utterance); an utterance of T frames has ceil((T + delay) / chunk)
chunks, and a stream's state is zeroed where it starts a new utterance.
Decoding runs each utterance whole (plus ``delay`` repeated last frames),
which is what training's chunks compute, chunk by chunk.
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
    """Chunk geometry, in frames of 10 ms (see the module docstring).

    ``carry``: state carry-over between consecutive chunks of an utterance
    (then ``left`` is not used: the carried state is the left context).
    """

    chunk: int = 20
    left: int = 40
    delay: int = 5
    carry: bool = False

    @property
    def width(self) -> int:
        """Input frames per chunk."""
        return self.chunk if self.carry else self.left + self.chunk + self.delay

    @property
    def out_slice(self) -> slice:
        """Output positions that carry the chunk's labels."""
        if self.carry:
            return slice(0, self.chunk)
        return slice(self.left + self.delay, self.left + self.delay + self.chunk)

    def starts(self, num_frames: int) -> List[int]:
        """Chunk start frames (of the input) of an utterance of ``num_frames``
        frames (the last chunk may be partial)."""
        return list(range(0, num_frames + (self.delay if self.carry else 0), self.chunk))

    def num_chunks(self, num_frames: int) -> int:
        """How many chunks an utterance of ``num_frames`` frames has."""
        return -(-(num_frames + (self.delay if self.carry else 0)) // self.chunk)

    def label_start(self, start: int) -> int:
        """The first label frame of the chunk at ``start`` (negative: the
        chunk's first outputs have no label)."""
        return start - self.delay if self.carry else start

    def input_index(self, start: int, num_frames: int) -> np.ndarray:
        """Frame indices ``(width,)`` read by the chunk at ``start`` (clipped to the utterance)."""
        first = start if self.carry else start - self.left
        return np.clip(np.arange(first, start + self.chunk + (0 if self.carry else self.delay)), 0,
                       num_frames - 1)


def utterance_input(feats: np.ndarray, spec: ChunkSpec) -> torch.Tensor:
    """The network input that decodes one utterance: all its chunks as a
    batch ``(num_chunks, width, D) float32``; with ``spec.carry`` the
    whole utterance and ``delay`` repeats of its last frame, ``(1, T + delay, D)``.

    Args: feats ``(T, D) float32``.
    """
    t = feats.shape[0]
    if spec.carry:
        idx = np.minimum(np.arange(t + spec.delay), t - 1)[None]
    else:
        idx = np.stack([spec.input_index(s, t) for s in spec.starts(t)])
    return torch.from_numpy(np.ascontiguousarray(feats[idx]))


def utterance_output(outputs: torch.Tensor, spec: ChunkSpec, num_frames: int) -> torch.Tensor:
    """Per-frame outputs ``(num_frames, K)`` from the network's outputs
    ``(N, W, K)`` on :func:`utterance_input`."""
    if spec.carry:
        return outputs[0, spec.delay : spec.delay + num_frames]
    return outputs[:, spec.out_slice].reshape(-1, outputs.shape[-1])[:num_frames]


def stream_plan(chunks: np.ndarray, order: np.ndarray, streams: int) -> List[Tuple[int, int, int]]:
    """The multi-stream schedule of state carry-over training: utterances
    are taken in ``order``, each by the stream that comes free first (the
    lowest-numbered among those free at once), and run chunk after chunk.

    Args: chunks ``(N,) int``: chunks per utterance; order: utterance
    indices in the order they are taken; streams: B.
    Returns: per utterance taken, (stream, first step, utterance index);
    the utterance occupies its stream for steps first .. first + chunks - 1.
    """
    import heapq

    free = [(0, b) for b in range(streams)]  # (step the stream is free from, stream)
    out = []
    for i in order.tolist():
        t, b = heapq.heappop(free)
        out.append((b, t, i))
        heapq.heappush(free, (t + int(chunks[i]), b))
    return out


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
        """The chunks ``items`` (utterance index, start frame) as inputs
        ``(B, width, D) float32``, labels ``(B, chunk) int64`` (IGNORE outside
        the utterance), and auxiliary targets, task -> ``(B, chunk, K) float32``
        (class labels: ``(B, chunk) int64``)
        (frames outside the utterance repeat the nearest target; the loss masks them)."""
        spec = self.spec
        xs, ys = [], []
        auxs: Dict[str, list] = {n: [] for n in self.aux}
        for i, s in items:
            x, y = self.feats[i], self.labels[i]
            t = x.shape[0]
            xs.append(x[spec.input_index(s, t)])
            first = spec.label_start(s)
            frames = np.arange(first, first + spec.chunk)
            ok = (frames >= 0) & (frames < t)
            ys.append(np.where(ok, y[np.clip(frames, 0, t - 1)], IGNORE).astype(np.int64))
            for n, tt in self.aux.items():
                auxs[n].append(tt.chunk(self.utts[i], first, spec.chunk, t))
        return (torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys)),
                {n: torch.from_numpy(np.stack(v) if self.aux[n].classes is not None
                                     else np.stack(v).astype(np.float32)) for n, v in auxs.items()})

    def num_minibatches(self, batch_size: int, seed: Optional[int] = None, world_size: int = 1) -> int:
        """How many items :meth:`minibatches` yields on every rank."""
        if self.spec.carry:
            return self._carry_plan(batch_size * world_size, seed)[1]
        return -(-(-(-len(self) // batch_size)) // world_size)

    def minibatches(self, batch_size: int, seed: Optional[int] = None, rank: int = 0,
                    world_size: int = 1) -> Iterator[Tuple[torch.Tensor, torch.Tensor, Dict[str, torch.Tensor]]]:
        """Minibatches of ``batch_size`` chunks, shuffled with ``seed`` (None: in
        order). With ``world_size > 1`` each rank takes every world_size-th batch,
        so that the world_size batches of one step are together the batch of one
        process with ``world_size * batch_size``; every rank yields
        ceil(batches / world_size) items, None where the last step has no
        batch left for it (the trainer gives that step zero weight).

        With ``spec.carry``: :meth:`carry_minibatches` (4-tuples)."""
        if self.spec.carry:
            yield from self.carry_minibatches(batch_size, seed, rank, world_size)
            return
        order = np.arange(len(self.index))
        if seed is not None:
            np.random.default_rng(seed).shuffle(order)
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        for k in range(rank, len(batches) + (-len(batches)) % world_size, world_size):
            yield self.batch([self.index[j] for j in batches[k]]) if k < len(batches) else None

    def _carry_plan(self, streams: int, seed: Optional[int]) -> Tuple[List[List[Tuple[int, int, int]]], int]:
        """:func:`stream_plan` over the utterances (shuffled with ``seed``;
        None: in order): per stream, its (first step, end step, utterance
        index) in order; and the number of steps. The last plan is kept:
        the trainer asks for its length, then for its minibatches."""
        key = (streams, seed)
        if getattr(self, "_plan", (None,))[0] != key:
            chunks = np.array([self.spec.num_chunks(len(y)) for y in self.labels], dtype=np.int64)
            order = np.arange(len(self.labels))
            if seed is not None:
                np.random.default_rng(seed).shuffle(order)
            per_stream: List[List[Tuple[int, int, int]]] = [[] for _ in range(streams)]
            for b, t, i in stream_plan(chunks, order, streams):
                per_stream[b].append((t, t + int(chunks[i]), i))
            self._plan = (key, (per_stream, max((q[-1][1] for q in per_stream if q), default=0)))
        return self._plan[1]

    def _carry_steps(self, streams: int, seed: Optional[int], rows: slice = slice(None)
                     ) -> Iterator[List[Tuple[int, int]]]:
        """The steps of :meth:`_carry_plan`: per step, for the streams
        ``rows``, (utterance index, chunk number), (-1, -1) for a stream with
        no utterance left."""
        per_stream, steps = self._carry_plan(streams, seed)
        mine = per_stream[rows]
        pos = [0] * len(mine)
        for t in range(steps):
            row = []
            for b, queue in enumerate(mine):
                while pos[b] < len(queue) and t >= queue[pos[b]][1]:  # its utterance has ended
                    pos[b] += 1
                if pos[b] < len(queue) and t >= queue[pos[b]][0]:
                    row.append((queue[pos[b]][2], t - queue[pos[b]][0]))
                else:
                    row.append((-1, -1))
            yield row

    def carry_minibatches(self, batch_size: int, seed: Optional[int] = None, rank: int = 0,
                          world_size: int = 1) -> Iterator[Optional[Tuple[torch.Tensor, torch.Tensor,
                                                                          Dict[str, torch.Tensor], torch.Tensor]]]:
        """State carry-over minibatches (``spec.carry``; Kaldi nnet1's
        multi-stream training): ``batch_size`` streams (:func:`stream_plan`,
        the utterances shuffled with ``seed``; None: in order), one chunk of
        each per step, as :meth:`batch`'s tensors plus ``reset (B,) bool``, the
        streams that start an utterance (their state must be zeroed). A stream
        with no utterance left gives a chunk past the end of the first
        utterance (all labels IGNORE).

        With ``world_size > 1`` there are ``world_size * batch_size`` streams
        and rank r takes streams ``r * batch_size .. (r + 1) * batch_size - 1``
        of every step, so that the ranks' rows of one step are together the
        batch of one process with ``world_size * batch_size`` streams; a rank
        whose streams have all run out yields None for that step (the
        trainer gives it zero weight). Every rank yields the same number of
        items (:meth:`num_minibatches`).
        """
        past = self.spec.chunk * self.spec.num_chunks(len(self.labels[0])) + self.spec.delay  # beyond utterance 0
        for rows in self._carry_steps(batch_size * world_size, seed,
                                      slice(rank * batch_size, (rank + 1) * batch_size)):
            if all(i < 0 for i, _ in rows):
                yield None
                continue
            self._hold({i for i, _ in rows if i >= 0})
            x, y, aux = self.batch([(i, k * self.spec.chunk) if i >= 0 else (0, past) for i, k in rows])
            yield x, y, aux, torch.tensor([k == 0 for _, k in rows])

    def _hold(self, utts: set) -> None:
        """Keep the features of utterances ``utts`` at hand (the streams'
        current ones); in memory, all are."""


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
