"""Whole-utterance training data for CTC models (``model.criterion: ctc``).

Utterances are sorted by length and cut into minibatches of
``batch_size`` utterances (and at most ``max_frames`` padded frames); the
order of the minibatches is shuffled with the epoch's seed, so an epoch's
data order depends only on (seed, epoch), as for the chunked data of
:mod:`mtlasr.nnet.data`.

CTC (Graves et al., ICML 2006) can only align a label sequence of U units
to T' output frames when T' >= U + R, R the number of adjacent repeated
units (each repeat needs a blank between its two copies). Utterances that
break this are skipped and counted, as are utterances with no frames.
Utterances without a transcript can still train the auxiliary tasks (the
semi-supervised rows of seed 002, sec. 4.4): their CTC loss is masked out.
"""

from __future__ import annotations

from typing import Callable, Dict, Iterator, List, Mapping, NamedTuple, Optional, Sequence

import numpy as np
import torch

if False:  # pragma: no cover  (type checking only)
    from .targets import TaskTargets


class SeqBatch(NamedTuple):
    """One minibatch of padded utterances.

    Attributes:
      x: ``(B, T, D) float32`` features, zero-padded after each utterance.
      x_lens: ``(B,) int64`` valid frames (10 ms) per row.
      y: ``(B, U) int64`` unit ids (1..V-1; 0 = the CTC blank, used as padding).
      y_lens: ``(B,) int64`` units per row; 0 for an utterance without a
        transcript (its CTC loss is not counted).
      aux: task -> ``(B,) int64`` class ids (-100 = unknown) or ``(B, K) float32``
        utterance vectors.
      utts: the utterance ids.
    """

    x: torch.Tensor
    x_lens: torch.Tensor
    y: torch.Tensor
    y_lens: torch.Tensor
    aux: Dict[str, torch.Tensor]
    utts: List[str]

    def to(self, device: torch.device) -> "SeqBatch":
        return SeqBatch(self.x.to(device), self.x_lens.to(device), self.y.to(device), self.y_lens.to(device),
                        {k: v.to(device) for k, v in self.aux.items()}, self.utts)


def ctc_min_frames(units: np.ndarray) -> int:
    """The fewest output frames a CTC alignment of ``units`` ``(U,)`` needs:
    U plus one blank between every two equal adjacent units."""
    u = np.asarray(units)
    return int(len(u) + (np.count_nonzero(u[1:] == u[:-1]) if len(u) > 1 else 0))


class SequenceDataset:
    """In-memory utterances with CTC label sequences.

    Args:
      feats: utterance -> ``(T, D) float32`` features.
      labels: utterance -> ``(U,) int64`` unit ids (no blanks).
      out_frames: T -> output frames T' of the encoder (its subsampling).
      aux: task targets (:class:`mtlasr.nnet.targets.TaskTargets`) of
        utterance-level kinds; every kept utterance must have one.
      untranscribed: utterances kept without labels (auxiliary tasks only).
      groups: utterance -> label for the curriculum (e.g. its language).
      max_utt_frames: longer utterances are skipped (0 = no limit).

    ``skipped`` maps each dropped utterance to the reason.

    Raises: ValueError naming the task and utterance when a kept
    utterance has no auxiliary target.
    """

    def __init__(self, feats: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray],
                 out_frames: Callable[[int], int], aux: Optional[Mapping[str, "TaskTargets"]] = None,
                 untranscribed: Sequence[str] = (), groups: Optional[Mapping[str, str]] = None,
                 max_utt_frames: int = 0):
        self.aux = dict(aux or {})
        self.utts: List[str] = []
        self.skipped: Dict[str, str] = {}
        self.feats: List[np.ndarray] = []
        self.labels: List[Optional[np.ndarray]] = []
        self.groups: List[Optional[str]] = []
        extra = set(untranscribed)
        for utt, x in feats.items():
            y = labels.get(utt)
            if y is None and utt not in extra:
                self.skipped[utt] = "no transcript"
                continue
            t = x.shape[0]
            if t == 0:
                self.skipped[utt] = "no frames"
                continue
            if max_utt_frames and t > max_utt_frames:
                self.skipped[utt] = f"{t} frames, more than sequence.max_utt_frames {max_utt_frames}"
                continue
            if y is not None:
                y = np.asarray(y, dtype=np.int64)
                if len(y) == 0:
                    self.skipped[utt] = "empty transcript"
                    continue
                need = ctc_min_frames(y)
                if out_frames(t) < need:
                    self.skipped[utt] = (f"CTC infeasible: {len(y)} units need {need} output frames, "
                                         f"{t} frames give {out_frames(t)}")
                    continue
            for tt in self.aux.values():
                tt.check(utt, t)
            self.utts.append(utt)
            self.feats.append(np.ascontiguousarray(x, dtype=np.float32))
            self.labels.append(y)
            self.groups.append(groups.get(utt) if groups is not None else None)
        self.num_frames = int(sum(x.shape[0] for x in self.feats))
        self.num_untranscribed = sum(y is None for y in self.labels)

    def __len__(self) -> int:
        return len(self.utts)

    def batch(self, items: Sequence[int], crop_frames: int = 0,
              rng: Optional[np.random.Generator] = None) -> SeqBatch:
        """The :class:`SeqBatch` of utterances ``items`` (indices).

        ``crop_frames`` > 0: each untranscribed utterance longer than that
        is cut to ``crop_frames`` consecutive frames starting at a place
        drawn from ``rng`` (uniform over the whole windows; seed 003
        sec. 3.4's speaker segments). Transcribed ones stay whole.
        """
        feats = [self.feats[i] for i in items]
        if crop_frames:
            if rng is None:
                raise ValueError("batch: crop_frames needs an rng")
            feats = [self._crop(self.feats[i], crop_frames, rng) if self.labels[i] is None else self.feats[i]
                     for i in items]
        t_max = max(x.shape[0] for x in feats)
        x = np.zeros((len(items), t_max, feats[0].shape[1]), dtype=np.float32)
        for b, f in enumerate(feats):
            x[b, : f.shape[0]] = f
        ys = [self.labels[i] for i in items]
        u_max = max([len(y) for y in ys if y is not None] + [1])
        y = np.zeros((len(items), u_max), dtype=np.int64)
        for b, yy in enumerate(ys):
            if yy is not None:
                y[b, : len(yy)] = yy
        aux = {}
        for n, tt in self.aux.items():
            v = [tt.values[self.utts[i]] for i in items]
            aux[n] = (torch.from_numpy(np.stack(v).astype(np.int64)) if tt.classes is not None
                      else torch.from_numpy(np.stack(v).astype(np.float32)))
        return SeqBatch(torch.from_numpy(x), torch.tensor([f.shape[0] for f in feats], dtype=torch.int64),
                        torch.from_numpy(y), torch.tensor([0 if yy is None else len(yy) for yy in ys],
                                                          dtype=torch.int64),
                        aux, [self.utts[i] for i in items])

    @staticmethod
    def _crop(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        if x.shape[0] <= n:
            return x
        s = int(rng.integers(0, x.shape[0] - n + 1))
        return x[s: s + n]

    def _length(self, i: int, crop_frames: int) -> int:
        t = self.feats[i].shape[0]
        return min(t, crop_frames) if crop_frames and self.labels[i] is None else t

    def _batches(self, batch_size: int, max_frames: int, groups: Optional[Sequence[str]],
                 subset: Optional[str] = None, crop_frames: int = 0) -> List[List[int]]:
        if subset not in (None, "transcribed", "untranscribed"):
            raise ValueError(f"subset: '{subset}' is not transcribed or untranscribed")
        keep = [i for i in range(len(self.utts)) if (groups is None or self.groups[i] in groups)
                and (subset is None or (self.labels[i] is None) == (subset == "untranscribed"))]
        keep.sort(key=lambda i: (self._length(i, crop_frames), self.utts[i]))
        batches: List[List[int]] = []
        cur: List[int] = []
        for i in keep:
            t = self._length(i, crop_frames)
            if cur and (len(cur) >= batch_size or (max_frames and t * (len(cur) + 1) > max_frames)):
                batches.append(cur)
                cur = []
            cur.append(i)
        if cur:
            batches.append(cur)
        return batches

    def num_batches(self, batch_size: int, max_frames: int = 0, groups: Optional[Sequence[str]] = None,
                    world_size: int = 1, subset: Optional[str] = None, crop_frames: int = 0) -> int:
        """Minibatches per rank in one epoch (the steps of :meth:`minibatches`)."""
        return -(-len(self._batches(batch_size, max_frames, groups, subset, crop_frames)) // world_size)

    def minibatches(self, batch_size: int, seed: Optional[int] = None, rank: int = 0, world_size: int = 1,
                    max_frames: int = 0, groups: Optional[Sequence[str]] = None,
                    subset: Optional[str] = None, crop_frames: int = 0) -> Iterator[SeqBatch]:
        """Minibatches of up to ``batch_size`` utterances of similar length
        (and at most ``max_frames`` padded frames, 0 = no cap), in an order
        shuffled with ``seed`` (None: shortest first); only utterances whose
        group is in ``groups`` (None: all), and with ``subset`` only the
        ``transcribed`` or the ``untranscribed`` ones (seed 003's disjoint
        speech and speaker batches). ``crop_frames``: untranscribed
        utterances cut to windows of that many frames (:meth:`batch`),
        placed at random with ``seed`` (needed then).

        With ``world_size > 1``, every world_size consecutive batches (in
        length order) make one step, rank r taking the r-th; the steps are
        shuffled, and the windows drawn for the step as a whole. So the
        ranks together see what one process sees with ``world_size *
        batch_size`` (exactly, where ``max_frames`` does not cut a batch).
        Every rank yields :meth:`num_batches` items: None in the step of the
        longest utterances where it has fewer batches than ranks and none
        is left for this rank (the trainer gives that step zero weight).

        Raises: ValueError if ``crop_frames`` is given without ``seed``.
        """
        if crop_frames and seed is None:
            raise ValueError("minibatches: crop_frames needs a seed (the windows are drawn at random)")
        batches = self._batches(batch_size, max_frames, groups, subset, crop_frames)
        steps = [batches[k: k + world_size] for k in range(0, len(batches), world_size)]
        order = np.arange(len(steps))
        if seed is not None:
            np.random.default_rng(seed).shuffle(order)
        for j in order:
            if rank >= len(steps[j]):
                yield None
                continue
            rng = None
            if crop_frames:
                # the windows of step j depend on (seed, j) alone: the same on every rank and rerun
                rng = np.random.default_rng([seed, int(j)])
                for i in (i for b in steps[j][:rank] for i in b if self.labels[i] is None):
                    self._crop(self.feats[i], crop_frames, rng)  # the draws of the ranks before this one
            yield self.batch(steps[j][rank], crop_frames, rng)

    def group_counts(self) -> Dict[str, int]:
        """Utterances per curriculum group."""
        out: Dict[str, int] = {}
        for g in self.groups:
            out[str(g)] = out.get(str(g), 0) + 1
        return out
