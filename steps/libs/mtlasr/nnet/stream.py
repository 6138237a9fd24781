"""Training data read from disk as it is needed (``train.data: stream``).

The in-memory datasets (:class:`mtlasr.nnet.data.ChunkDataset`,
:class:`mtlasr.nnet.seqdata.SequenceDataset`) read every feature matrix
at the start, so their memory grows with the corpus. The streaming ones
keep only the scp index and read features through it (random access into
the arks, :class:`FeatureSource`), prepared exactly as
:func:`mtlasr.features.load_features` prepares them (speaker CMVN,
deltas). What stays in memory still grows with the corpus, but by a few
bytes per frame where the features take 52 (13 float32) or more: per
utterance its id, feats.scp entry, speaker and frame count; for chunked
(frame cross-entropy) training its frame labels (pdf ids, 2 bytes per
10 ms frame while there are fewer than 32768 pdfs); for CTC its unit
sequence; and the auxiliary task targets, as in memory (utterance vectors
and labels; ``frame_vector`` targets are one row per ``period`` frames).
The validation set streams too (in order). Features are checked when they
are read, not all at the start: an unreadable ark entry, non-finite
values or a frame count other than utt2num_frames stop the epoch with an
error naming the utterance and its feats.scp entry. Reading is not
overlapped with training (no prefetch thread).

Chunks (:class:`StreamChunkDataset`): an epoch's utterances are shuffled
with the epoch's seed and cut into buffers of at most
``train.buffer_frames`` frames; the chunks of one buffer are shuffled (the
seed again) and served as minibatches, which may straddle two buffers.
Only one buffer's features are held (plus the few utterances of a
minibatch that straddles), and each utterance is read once per epoch.
When the whole training set fits in one buffer, the minibatches are those
of ``ChunkDataset`` to the bit (same seed, same order), and with any buffer
every chunk comes exactly once per epoch, in an order that depends only on
(seed, buffer_frames).

Whole utterances (:class:`StreamSequenceDataset`, CTC): the minibatch plan
of ``SequenceDataset`` (sort by length, cut, shuffle the minibatches) needs
only the frame counts, so it is kept whole and exact for any corpus size;
each minibatch reads its own utterances when it is served.

Under DistributedDataParallel every rank makes the same plan and takes
its share of every step, as the in-memory datasets do, and reads
only the utterances of its own minibatches.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping as MappingABC, MutableMapping, Sequence as SequenceABC
from typing import Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from ..datadir import PathLike, read_table
from ..features import FeatureTable
from .data import ChunkDataset, ChunkSpec, label_mismatch
from .seqdata import SequenceDataset

logger = logging.getLogger(__name__)

MAX_OPEN_ARKS = 32  # ark files kept open by one reader (least recently used closed first)


class OpenFiles(MutableMapping):
    """Open files by name, at most ``max_open``; the least recently used is
    closed to make room. kaldiio's ``load_mat(..., fd_dict=)`` keeps ark
    files open in it, so reading utterance after utterance does not reopen
    the ark every time."""

    def __init__(self, max_open: int = MAX_OPEN_ARKS):
        if max_open < 1:
            raise ValueError(f"max_open must be >= 1, got {max_open}")
        self.max_open = max_open
        self._files: "OrderedDict[str, object]" = OrderedDict()

    def __getitem__(self, name: str):
        f = self._files[name]
        self._files.move_to_end(name)
        return f

    def __setitem__(self, name: str, f) -> None:
        if name in self._files:
            self._files.pop(name).close()
        while len(self._files) >= self.max_open:
            self._files.popitem(last=False)[1].close()
        self._files[name] = f

    def __delitem__(self, name: str) -> None:
        self._files.pop(name).close()

    def __contains__(self, name) -> bool:
        return name in self._files

    def __iter__(self):
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def close(self) -> None:
        """Close every open file."""
        while self._files:
            self._files.popitem()[1].close()


def _frame_counts(table: FeatureTable, files: OpenFiles) -> Dict[str, int]:
    """Frames per utterance of ``table``, in feats.scp order: from
    ``utt2num_frames`` where it lists the utterance (make_mfcc.sh writes it;
    checked again when the utterance is read), else by reading the matrix.

    Raises: ValueError for a malformed utt2num_frames line (naming it) or an
    unreadable matrix (naming the utterance).
    """
    path = table.data_dir / "utt2num_frames"
    listed = read_table(path) if path.is_file() else {}
    out: Dict[str, int] = {}
    unlisted = 0
    for utt in table.feats_scp:
        n = listed.get(utt)
        if n is None:
            raw = table.raw(utt, files)
            out[utt] = raw.shape[0] if raw.ndim == 2 else 0
            unlisted += 1
            continue
        try:
            out[utt] = int(n)
        except ValueError:
            raise ValueError(f"{path}: utterance {utt}: '{n}' is not a frame count") from None
    if unlisted:
        logger.info("%s: %d of %d utterances not in utt2num_frames: their frames were counted in the arks",
                    table.data_dir, unlisted, len(out))
    return out


class FeatureSource(MappingABC):
    """The features of one or more data dirs, read from their arks when
    asked for: utterance -> ``(T, D * (delta_order + 1)) float32``, prepared
    as :func:`mtlasr.features.load_features` prepares them (a drop-in for
    its dict that holds no features).

    Args:
      data_dirs: data dirs with feats.scp, utt2spk (and cmvn.scp for speaker
        CMVN); utt2num_frames gives the frame counts without reading the arks.
      norm_vars, delta_order, cmvn: as :func:`mtlasr.features.load_features`.
      max_open: ark files kept open (:class:`OpenFiles`).

    Attributes: lengths: utterance -> frames (10 ms), in feats.scp order.

    Raises: FileNotFoundError (a missing table), ValueError (an utterance in
    two data dirs, a malformed utt2num_frames).
    """

    def __init__(self, data_dirs: Sequence[PathLike], norm_vars: bool = False, delta_order: int = 0,
                 cmvn: str = "speaker", max_open: int = MAX_OPEN_ARKS):
        self.files = OpenFiles(max_open)
        self.tables: List[FeatureTable] = []
        self.lengths: Dict[str, int] = {}
        self._table_of: Dict[str, int] = {}
        for d in data_dirs:
            self._add(FeatureTable(d, norm_vars, delta_order, cmvn), None)

    def _add(self, table: FeatureTable, lengths: Optional[Mapping[str, int]]) -> None:
        lengths = _frame_counts(table, self.files) if lengths is None else lengths
        clash = next((u for u in lengths if u in self.lengths), None)
        if clash is not None:
            where = self.tables[self._table_of[clash]].data_dir
            raise ValueError(f"utterance {clash} is in both {where} and {table.data_dir}")
        k = len(self.tables)
        self.tables.append(table)
        for u, n in lengths.items():
            self.lengths[u] = n
            self._table_of[u] = k

    @classmethod
    def merged(cls, *sources: "FeatureSource") -> "FeatureSource":
        """One source with the utterances of ``sources`` (their tables and
        frame counts, not read again).

        Raises: ValueError for an utterance in two of them."""
        out = cls([], max_open=max(s.files.max_open for s in sources))
        for s in sources:
            for k, t in enumerate(s.tables):
                out._add(t, {u: n for u, n in s.lengths.items() if s._table_of[u] == k})
        return out

    def __getitem__(self, utt: str) -> np.ndarray:
        """Read and prepare ``utt``'s features.

        Raises: KeyError (an unknown utterance, or no speaker or CMVN stats);
        ValueError naming the utterance and its feats.scp entry: an
        unreadable ark (missing, truncated or corrupt), non-finite features,
        or a frame count other than utt2num_frames says.
        """
        k = self._table_of.get(utt)
        if k is None:
            raise KeyError(f"no features for utterance {utt} in {', '.join(str(t.data_dir) for t in self.tables)}")
        table = self.tables[k]
        raw = table.raw(utt, self.files)
        n = raw.shape[0] if raw.ndim == 2 else 0
        if n != self.lengths[utt]:
            raise ValueError(f"utterance {utt}: {n} frames in its ark ({table.data_dir}/feats.scp: "
                             f"{table.feats_scp[utt]}), {self.lengths[utt]} in {table.data_dir}/utt2num_frames; "
                             f"recompute the features or fix utt2num_frames")
        return table.prepare(utt, raw)

    def __iter__(self) -> Iterator[str]:
        return iter(self.lengths)

    def __len__(self) -> int:
        return len(self.lengths)

    def __contains__(self, utt) -> bool:
        return utt in self.lengths

    def close(self) -> None:
        """Close the open ark files (reading again reopens them)."""
        self.files.close()


class LazyFeatures(SequenceABC):
    """A dataset's ``feats``: utterance index -> ``(T, D) float32``, taken
    from ``window`` (the features the dataset holds now) or else read.

    Args: source: the features; utts: the dataset's utterances, by index.
    """

    def __init__(self, source: FeatureSource, utts: Sequence[str]):
        self.source, self.utts = source, utts
        self.window: Dict[int, np.ndarray] = {}

    def __getitem__(self, i: int) -> np.ndarray:
        x = self.window.get(i)
        return self.source[self.utts[i]] if x is None else x

    def __len__(self) -> int:
        return len(self.utts)


def compact_labels(y: np.ndarray) -> np.ndarray:
    """Integer labels ``(T,)`` in the smallest of int16, int32, int64 that
    holds them (pdf ids: 2 bytes a frame instead of 8)."""
    y = np.asarray(y)
    for dt in (np.int16, np.int32):
        info = np.iinfo(dt)
        if y.size == 0 or (int(y.min()) >= info.min and int(y.max()) <= info.max):
            return y.astype(dt, copy=False)
    return y.astype(np.int64, copy=False)


class StreamChunkDataset(ChunkDataset):
    """:class:`~mtlasr.nnet.data.ChunkDataset` whose features stay on disk
    until their buffer is served (see the module docstring).

    Args:
      source: the features (:class:`FeatureSource`).
      labels, spec, aux: as :class:`~mtlasr.nnet.data.ChunkDataset`
        (utterances are dropped for the same reasons, into ``skipped``).
      buffer_frames: frames (10 ms) of features held at once (the
        utterances of one buffer); at least one utterance.

    Attributes as ``ChunkDataset``, except ``feats`` (read on access,
    :class:`LazyFeatures`), no ``index``; ``lengths``: ``(N,) int64`` frames
    per kept utterance; ``labels``: compact (:func:`compact_labels`).

    Raises: ValueError as ``ChunkDataset`` (an auxiliary target missing),
    or for ``buffer_frames`` < 1.
    """

    def __init__(self, source: FeatureSource, labels: Mapping[str, np.ndarray], spec: ChunkSpec,
                 aux: Optional[Mapping[str, object]] = None, buffer_frames: int = 500_000):
        if buffer_frames < 1:
            raise ValueError(f"buffer_frames must be >= 1, got {buffer_frames}")
        self.spec, self.aux, self.source, self.buffer_frames = spec, dict(aux or {}), source, buffer_frames
        self.utts: List[str] = []
        self.skipped: Dict[str, str] = {}
        self.labels: List[np.ndarray] = []
        lengths: List[int] = []
        for utt, t in source.lengths.items():
            y = labels.get(utt)
            why = label_mismatch(y, t)
            if why:
                self.skipped[utt] = why
                continue
            for tt in self.aux.values():
                tt.check(utt, t)
            self.utts.append(utt)
            self.labels.append(compact_labels(y))
            lengths.append(t)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.chunks = -(-(self.lengths + (spec.delay if spec.carry else 0)) // spec.chunk)  # chunks per utterance
        self.num_frames = int(self.lengths.sum())
        self.feats = LazyFeatures(source, self.utts)

    def __len__(self) -> int:
        return int(self.chunks.sum())

    def buffers(self, seed: Optional[int] = None) -> List[np.ndarray]:
        """The epoch's buffers: utterance indices, ascending within each
        buffer. All utterances in one buffer if they fit; else taken in an
        order shuffled with ``seed`` (None: in order) until the next would
        pass ``buffer_frames``."""
        n = len(self.utts)
        if self.num_frames <= self.buffer_frames:
            return [np.arange(n)]
        order = np.arange(n)
        if seed is not None:  # a stream of its own: the chunk shuffles draw from default_rng(seed)
            np.random.default_rng([seed, 1]).shuffle(order)
        out, start, filled = [], 0, 0
        for k, i in enumerate(order):
            t = int(self.lengths[i])
            if k > start and filled + t > self.buffer_frames:
                out.append(np.sort(order[start:k]))
                start, filled = k, 0
            filled += t
        out.append(np.sort(order[start:]))
        return out

    def minibatches(self, batch_size: int, seed: Optional[int] = None, rank: int = 0,
                    world_size: int = 1) -> Iterator[Tuple[torch.Tensor, torch.Tensor, Dict[str, torch.Tensor]]]:
        """Minibatches of ``batch_size`` chunks as
        :meth:`ChunkDataset.minibatches <mtlasr.nnet.data.ChunkDataset.minibatches>`
        (the same tensors), shuffled with ``seed`` within each buffer (None:
        in order). With ``world_size > 1`` each rank takes every
        world_size-th minibatch and reads only the utterances of its own;
        every rank yields ceil(minibatches / world_size) items, None where
        the last step has no minibatch left for it (as ``ChunkDataset``; the
        trainer gives that step zero weight).

        With ``spec.carry``: :meth:`ChunkDataset.carry_minibatches
        <mtlasr.nnet.data.ChunkDataset.carry_minibatches>`, holding the
        features of the streams' current utterances only (each read once
        per epoch, when its stream starts it; ``buffer_frames`` is not used).

        Raises: ValueError or KeyError from :meth:`FeatureSource.__getitem__`
        when an utterance cannot be read (naming it and its ark).
        """
        if self.spec.carry:
            try:
                yield from self.carry_minibatches(batch_size, seed, rank, world_size)
            finally:
                self.feats.window.clear()
            return
        n = len(self)
        nb = -(-n // batch_size)
        usable = nb
        yielded = 0
        rng = np.random.default_rng(seed) if seed is not None else None
        window = self.feats.window
        pos = 0  # chunks of the epoch served so far (all ranks)
        pending: List[Tuple[int, int]] = []  # this rank's chunks of the minibatch being filled
        try:
            for buf in self.buffers(seed):
                counts = self.chunks[buf]
                utt = np.repeat(buf, counts)
                start = (np.arange(len(utt)) - np.repeat(np.cumsum(counts) - counts, counts)) * self.spec.chunk
                order = np.arange(len(utt))
                if rng is not None:
                    rng.shuffle(order)
                b = (pos + np.arange(len(utt))) // batch_size
                mine = (b < usable) & (b % world_size == rank)
                keep = {i for i, _ in pending}  # a minibatch that straddles two buffers
                for i in [i for i in window if i not in keep]:
                    del window[i]
                for i in np.unique(utt[order[mine]]).tolist():
                    if i not in window:
                        window[i] = self.source[self.utts[i]]
                for k, m in zip(order.tolist(), mine.tolist()):
                    if m:
                        pending.append((int(utt[k]), int(start[k])))
                    pos += 1
                    if pending and (pos % batch_size == 0 or pos == n):
                        yield self.batch(pending)
                        yielded += 1
                        pending = []
            for _ in range(-(-nb // world_size) - yielded):
                yield None
        finally:
            window.clear()

    def _hold(self, utts: set) -> None:
        window = self.feats.window
        for i in [i for i in window if i not in utts]:
            del window[i]
        for i in sorted(utts - set(window)):
            window[i] = self.source[self.utts[i]]


class StreamSequenceDataset(SequenceDataset):
    """:class:`~mtlasr.nnet.seqdata.SequenceDataset` whose features stay on
    disk; a minibatch reads its utterances when it is made. Its minibatches
    (plan, order, tensors) are those of ``SequenceDataset``.

    Args:
      source: the features (:class:`FeatureSource`).
      the rest: as :class:`~mtlasr.nnet.seqdata.SequenceDataset`.

    Attributes as ``SequenceDataset``, except ``feats`` (read on access,
    :class:`LazyFeatures`); ``lengths``: ``(N,) int64`` frames per kept
    utterance.

    Raises: ValueError as ``SequenceDataset``.
    """

    def __init__(self, source: FeatureSource, labels: Mapping[str, np.ndarray], out_frames: Callable[[int], int],
                 aux: Optional[Mapping[str, object]] = None, untranscribed: Sequence[str] = (),
                 groups: Optional[Mapping[str, str]] = None, max_utt_frames: int = 0):
        # SequenceDataset's checks need each utterance's frame count only: they run on
        # (T, 0) stand-ins, which hold no feature data
        super().__init__({u: np.empty((t, 0), dtype=np.float32) for u, t in source.lengths.items()}, labels,
                         out_frames, aux, untranscribed, groups, max_utt_frames)
        self.source = source
        self.lengths = np.asarray([x.shape[0] for x in self.feats], dtype=np.int64)
        self.feats = LazyFeatures(source, self.utts)

    def _length(self, i: int, crop_frames: int) -> int:
        t = int(self.lengths[i])
        return min(t, crop_frames) if crop_frames and self.labels[i] is None else t

    def batch(self, items: Sequence[int], crop_frames: int = 0, rng: Optional[np.random.Generator] = None):
        """As :meth:`SequenceDataset.batch <mtlasr.nnet.seqdata.SequenceDataset.batch>`,
        reading the utterances ``items`` first.

        Raises: as :meth:`FeatureSource.__getitem__`."""
        window = self.feats.window
        try:
            for i in items:
                if i not in window:
                    window[i] = self.source[self.utts[i]]
            return super().batch(items, crop_frames, rng)
        finally:
            window.clear()


def dataset_source(data_dir: PathLike, cfg_features: Mapping[str, object], stream: bool):
    """A data dir's features for the training data: all read now (the dict
    of :func:`mtlasr.features.load_features`) or, with ``stream``, a
    :class:`FeatureSource` that reads them when they are needed.

    Raises: as those two.
    """
    from ..features import load_features

    fc = cfg_features
    if stream:
        return FeatureSource([data_dir], fc["norm_vars"], fc["delta_order"], fc.get("cmvn", "speaker"))
    return load_features(data_dir, norm_vars=fc["norm_vars"], delta_order=fc["delta_order"],
                         cmvn=fc.get("cmvn", "speaker"))
