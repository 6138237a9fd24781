"""Streaming training data (train.data: stream, mtlasr.nnet.stream): the
same features, minibatches and trained model as the in-memory datasets on
the TIMIT sample; with a small buffer every chunk once per epoch, the same
order for the same seed, the ranks' shards, a bounded window; clear
errors for a missing or damaged ark entry; CTC minibatches identical to
SequenceDataset's. Synthetic data dirs are written with kaldiio."""

import shutil

import kaldiio
import numpy as np
import pytest
import torch

from conftest import RECIPE, SAMPLE, sh
from mtlasr import features
from mtlasr.nnet.config import load_config
from mtlasr.nnet.data import ChunkDataset, ChunkSpec
from mtlasr.nnet.seqdata import SequenceDataset
from mtlasr.nnet.stream import (FeatureSource, OpenFiles, StreamChunkDataset, StreamSequenceDataset,
                                compact_labels)
from mtlasr.nnet.targets import TaskTargets
from mtlasr.nnet.train import Trainer

SPEC = ChunkSpec(chunk=7, left=4, delay=2)


def write_data_dir(d, feats, arks=3):
    """A data dir from utt -> (T, D): features spread over ``arks`` arks,
    speaker = the utterance id before '-', CMVN stats, utt2num_frames."""
    d.mkdir(parents=True)
    utts = sorted(feats)
    scp = []
    for k in range(arks):
        part = {u: feats[u].astype(np.float32) for u in utts[k::arks]}
        kaldiio.save_ark(str(d / f"feats.{k}.ark"), part, scp=str(d / f"feats.{k}.scp"))
        scp += (d / f"feats.{k}.scp").read_text().splitlines()
    (d / "feats.scp").write_text("".join(sorted(line + "\n" for line in scp)))
    spk = {u: u.split("-")[0] for u in utts}
    stats = {s: features.cmvn_stats(np.concatenate([feats[u] for u in utts if spk[u] == s]))
             for s in sorted(set(spk.values()))}
    kaldiio.save_ark(str(d / "cmvn.ark"), stats, scp=str(d / "cmvn.scp"))
    (d / "utt2spk").write_text("".join(f"{u} {spk[u]}\n" for u in utts))
    (d / "utt2num_frames").write_text("".join(f"{u} {feats[u].shape[0]}\n" for u in utts))
    return d


def toy_feats(n=30, dim=3, seed=0):
    rng = np.random.default_rng(seed)
    return {f"s{i % 4}-u{i:03d}": rng.standard_normal((int(rng.integers(5, 60)), dim)) * (i % 4 + 1)
            for i in range(n)}


def tagged_labels(utts, lengths):
    """Frame labels that name their chunk: utterance k's frame t is k * 1000 + t."""
    return {u: np.arange(n, dtype=np.int64) + 1000 * k for k, (u, n) in enumerate(zip(utts, lengths))}


def assert_same_batches(a, b):
    a, b = list(a), list(b)
    assert len(a) == len(b) and a
    # under DDP a rank with no batch left in the last step yields None (the same place in both)
    assert [x is None for x in a] == [x is None for x in b] and any(x is not None for x in a)
    for (xa, ya, auxa), (xb, yb, auxb) in ((x, y) for x, y in zip(a, b) if x is not None):
        assert xa.dtype == xb.dtype == torch.float32 and ya.dtype == yb.dtype == torch.int64
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
        assert sorted(auxa) == sorted(auxb) and all(torch.equal(auxa[k], auxb[k]) for k in auxa)


# ------------------------------------------------------------ TIMIT sample
@pytest.fixture(scope="module")
def sample_train(tmp_path_factory):
    """The TIMIT sample's training set with MFCCs (13-dim) and speaker CMVN stats."""
    if not SAMPLE.is_dir():
        pytest.skip(f"TIMIT sample not found at {SAMPLE}")
    base = tmp_path_factory.mktemp("sample")
    sh(f"python3 '{RECIPE}/local/timit_data_prep.py' '{SAMPLE}' '{base}/data'")
    d = base / "data" / "train"
    sh(f"steps/make_mfcc.sh --nj 2 --mfcc-config '{RECIPE}/conf/mfcc.conf' '{d}' '{base}/log' '{base}/mfcc'")
    sh(f"steps/compute_cmvn_stats.sh '{d}' '{base}/log' '{base}/mfcc'")
    return d


def sample_datasets(d, buffer_frames=10**9, aux=True):
    mem = features.load_features(d, norm_vars=True, delta_order=2)
    src = FeatureSource([d], norm_vars=True, delta_order=2)
    utts = list(mem)
    labels = {u: np.random.default_rng(k).integers(0, 40, mem[u].shape[0]) for k, u in enumerate(utts)}
    del labels[utts[3]]                                   # no alignment: skipped by both
    labels[utts[5]] = labels[utts[5]][:-1]                # one label short: skipped by both
    targets = {}
    if aux:
        t = TaskTargets("iv", "utt_vector", 4, 1, "ivectors.scp")
        t.values = {u: np.random.default_rng(k).standard_normal(4).astype(np.float32) for k, u in enumerate(utts)}
        targets["iv"] = t
    return (ChunkDataset(mem, labels, SPEC, targets),
            StreamChunkDataset(src, labels, SPEC, targets, buffer_frames=buffer_frames), mem, src)


def test_sample_features_and_minibatches_equal_in_memory(sample_train):
    """On the sample (96 training utterances, 39-dim CMVN+deltas): every utterance
    read through feats.scp equals load_features' to the bit; with the whole
    set in one buffer the minibatches are ChunkDataset's (seeded, in order,
    and each rank's shard under world_size 2)."""
    mem_ds, st_ds, mem, src = sample_datasets(sample_train)
    assert list(src) == list(mem) and len(src) == 96
    for u, x in mem.items():
        y = src[u]
        assert y.dtype == np.float32 and y.shape == x.shape and np.array_equal(x, y), u
    assert st_ds.utts == mem_ds.utts and st_ds.skipped == mem_ds.skipped and len(st_ds.skipped) == 2
    assert len(st_ds) == len(mem_ds) and st_ds.num_frames == mem_ds.num_frames
    assert st_ds.labels[0].dtype == np.int16
    assert st_ds.feats[0].shape == mem_ds.feats[0].shape  # what the trainer reads its input dim from
    assert_same_batches(st_ds.minibatches(64, seed=11), mem_ds.minibatches(64, seed=11))
    assert_same_batches(st_ds.minibatches(50), mem_ds.minibatches(50))
    for r in (0, 1):
        assert_same_batches(st_ds.minibatches(64, seed=3, rank=r, world_size=2),
                            mem_ds.minibatches(64, seed=3, rank=r, world_size=2))


def test_sample_same_model_after_an_epoch(sample_train, tmp_path):
    """One epoch of a tiny LSTM (with an auxiliary i-vector head) trained on
    the streaming and on the in-memory dataset: the same weights to the bit;
    with a small buffer the run still trains (another order)."""
    torch.set_num_threads(1)
    cfg = load_config(None, ["model.num_layers=1", "model.cell_dim=16", "model.proj_dim=8", "chunk.chunk=7",
                             "chunk.left=4", "chunk.delay=2", "train.max_epochs=1", "train.minibatch=128",
                             "train.log_interval=1000", "train.num_threads=1", "tasks.iv.targets=utt_vector",
                             "tasks.iv.source=x", "tasks.iv.weight=0.1"])
    mem_ds, st_ds, _, src = sample_datasets(sample_train)
    _, small, _, _ = sample_datasets(sample_train, buffer_frames=3000)
    assert len(small.buffers(0)) >= 10
    weights = []
    for name, ds in (("memory", mem_ds), ("stream", st_ds), ("small", small)):
        (tmp_path / name).mkdir()
        tr = Trainer(cfg, ds, None, 40, tmp_path / name, torch.device("cpu"))
        tr.run()
        weights.append(tr.model.state_dict())
        assert np.isfinite(tr.history[0]["train_loss"])
    assert weights[0].keys() == weights[1].keys()
    for k in weights[0]:
        assert torch.equal(weights[0][k], weights[1][k]), k
    assert any(not torch.equal(weights[0][k], weights[2][k]) for k in weights[0])


# ------------------------------------------------------------ small buffers
@pytest.fixture
def toy(tmp_path):
    feats = toy_feats()
    d = write_data_dir(tmp_path / "data", feats)
    src = FeatureSource([d], norm_vars=True, delta_order=1, max_open=2)
    mem = features.load_features(d, norm_vars=True, delta_order=1)
    labels = tagged_labels(list(mem), [x.shape[0] for x in mem.values()])
    return d, src, mem, labels


def chunk_ids(batches):
    """(utterance index, chunk start) of every chunk, from the tagged labels."""
    out = []
    for _, y, _ in (b for b in batches if b is not None):  # None: a DDP rank's empty last step
        first = y[:, 0].numpy()
        out += [(int(v) // 1000, int(v) % 1000) for v in first]
    return out


def test_small_buffer_every_chunk_once_reproducible(toy):
    """Buffers of 150 frames (utterances of 5-59): every chunk exactly once
    per epoch, each with the inputs and labels ChunkDataset gives it; the
    same order for the same seed, another for another seed; at most one
    buffer (plus the utterances of a straddling minibatch) held at a time;
    the ranks of world_size 3 share the minibatches out exactly."""
    d, src, mem, labels = toy
    ds = StreamChunkDataset(src, labels, SPEC, buffer_frames=150)
    ref = ChunkDataset(mem, labels, SPEC)
    bufs = ds.buffers(4)
    assert len(bufs) >= 5 and sorted(np.concatenate(bufs).tolist()) == list(range(len(ds.utts)))
    assert all(ds.lengths[b].sum() <= 150 or len(b) == 1 for b in bufs)
    assert [b.tolist() for b in bufs] == [b.tolist() for b in ds.buffers(4)]
    assert [b.tolist() for b in bufs] != [b.tolist() for b in ds.buffers(5)]

    held = []

    def watch(it):
        for b in it:
            held.append(int(ds.lengths[list(ds.feats.window)].sum()))
            yield b

    batches = list(watch(ds.minibatches(8, seed=4)))
    assert not ds.feats.window  # released at the end of the epoch
    ids = chunk_ids(batches)
    assert sorted(ids) == sorted(ref.index) and len(ids) == len(ref) == len(ds)
    assert max(held) <= 150 + 8 * int(ds.lengths.max())
    # each chunk's tensors are ChunkDataset's for the same chunk
    want = ref.batch(ids)
    assert torch.equal(torch.cat([b[0] for b in batches]), want[0])
    assert torch.equal(torch.cat([b[1] for b in batches]), want[1])
    assert [len(b[0]) for b in batches] == [8] * (len(ids) // 8) + ([len(ids) % 8] if len(ids) % 8 else [])

    assert chunk_ids(ds.minibatches(8, seed=4)) == ids
    assert chunk_ids(ds.minibatches(8, seed=5)) != ids
    # no seed: in order, as ChunkDataset
    assert chunk_ids(ds.minibatches(8)) == chunk_ids(ref.minibatches(8))

    # world_size 3: rank r takes minibatches r, r + 3, ...; every rank yields as many items
    # (None where the last step has no minibatch left for it), and together they cover every chunk
    shards = [chunk_ids(ds.minibatches(8, seed=4, rank=r, world_size=3)) for r in range(3)]
    n_batches = -(-len(ids) // 8)
    assert n_batches % 3, "the toy set must leave the last step short, or the None items go untested"
    items = [list(ds.minibatches(8, seed=4, rank=r, world_size=3)) for r in range(3)]
    assert [len(it) for it in items] == [-(-n_batches // 3)] * 3
    assert [it[-1] is None for it in items] == [r >= n_batches % 3 for r in range(3)]
    for r, s in enumerate(shards):
        want_r = [c for j in range(r, n_batches, 3) for c in ids[8 * j: 8 * j + 8]]
        assert s == want_r
    assert sorted(sum(shards, [])) == sorted(ids)


def test_compact_labels_and_open_files(tmp_path):
    assert compact_labels(np.array([0, 32767])).dtype == np.int16
    assert compact_labels(np.array([0, 32768])).dtype == np.int32
    assert compact_labels(np.array([], dtype=np.int64)).dtype == np.int16
    files = OpenFiles(2)
    handles = []
    for k in range(3):
        p = tmp_path / f"f{k}"
        p.write_text("x")
        files[str(p)] = open(p)
        handles.append(files[str(p)])
    assert list(files) == [str(tmp_path / "f1"), str(tmp_path / "f2")]
    assert handles[0].closed and not handles[2].closed
    _ = files[str(tmp_path / "f1")]               # used: the other one goes first
    files[str(tmp_path / "f0")] = open(tmp_path / "f0")
    assert handles[2].closed and not handles[1].closed
    files.close()
    assert not files and handles[1].closed


def test_missing_or_damaged_ark_entry_named(toy):
    """A truncated ark, a missing ark and a stale utt2num_frames stop the
    epoch with an error naming the utterance and its feats.scp entry;
    frame counts are read from the arks when utt2num_frames is absent."""
    d, src, mem, labels = toy
    ds = StreamChunkDataset(src, labels, SPEC, buffer_frames=10**6)
    (d / "utt2num_frames").unlink()
    recount = FeatureSource([d], norm_vars=True, delta_order=1)
    assert recount.lengths == src.lengths

    scp = dict(line.split(" ", 1) for line in (d / "feats.scp").read_text().splitlines())
    ark1 = d / "feats.1.ark"
    size = ark1.stat().st_size
    shutil.copy(ark1, d / "saved.ark")
    with open(ark1, "r+b") as f:
        f.truncate(size - 20)
    last = max((u for u in scp if scp[u].startswith(str(ark1) + ":")), key=lambda u: int(scp[u].rsplit(":", 1)[1]))
    src.close()
    with pytest.raises(ValueError, match=rf"utterance {last}: cannot read its features .*feats\.1\.ark"):
        list(ds.minibatches(8, seed=1))
    ark1.unlink()
    src.close()  # an open ark would still be read after its name is gone
    with pytest.raises(ValueError, match=r"utterance s\S+: cannot read its features .*feats\.1\.ark.*No such file"):
        list(ds.minibatches(8, seed=1))
    shutil.copy(d / "saved.ark", ark1)
    src.close()
    src.lengths[ds.utts[2]] += 1
    with pytest.raises(ValueError, match=rf"utterance {ds.utts[2]}: \d+ frames in its ark .* \d+ in .*utt2num_frames"):
        list(ds.minibatches(8))
    with pytest.raises(KeyError, match="no features for utterance nobody"):
        src["nobody"]


def test_sources_merge_and_refuse_clashes(tmp_path):
    a = write_data_dir(tmp_path / "a", toy_feats(6, seed=1))
    b = write_data_dir(tmp_path / "b", {f"x{k}": v for k, v in toy_feats(4, seed=2).items()})
    sa, sb = FeatureSource([a]), FeatureSource([b])
    both = FeatureSource.merged(sa, sb)
    assert list(both) == list(sa) + list(sb)
    assert all(np.array_equal(both[u], sb[u]) for u in sb)
    with pytest.raises(ValueError, match=r"utterance s\S+ is in both .*/a and .*/a"):
        FeatureSource([a, a])


def test_ctc_minibatches_equal_in_memory(tmp_path):
    """StreamSequenceDataset gives SequenceDataset's minibatches: length
    buckets, seeded order, a frame cap, cropped speaker-only utterances,
    curriculum groups, ranks; skipped utterances alike."""
    feats = toy_feats(40, dim=4, seed=3)
    utts = sorted(feats)
    rng = np.random.default_rng(0)
    labels = {u: rng.integers(1, 6, int(rng.integers(1, 12))) for u in utts[:30]}
    labels[utts[0]] = np.array([2] * 40)      # CTC infeasible: skipped by both
    extra = utts[30:]
    groups = {u: "ab"[k % 2] for k, u in enumerate(utts)}
    t = TaskTargets("spk", "utt_label", 4, 1, "utt2spk", classes=["s0", "s1", "s2", "s3"])
    t.values = {u: np.asarray(int(u[1]), dtype=np.int64) for u in utts}
    d = write_data_dir(tmp_path / "data", feats)
    mem = features.load_features(d, norm_vars=True)
    kw = dict(untranscribed=extra, groups=groups, max_utt_frames=55)
    a = SequenceDataset(mem, labels, lambda n: n, {"spk": t}, **kw)
    b = StreamSequenceDataset(FeatureSource([d], norm_vars=True), labels, lambda n: n, {"spk": t}, **kw)
    assert a.utts == b.utts and a.skipped == b.skipped and len(a.skipped) >= 2 and a.num_frames == b.num_frames
    for opts in (dict(seed=7), dict(), dict(seed=2, max_frames=120), dict(seed=5, crop_frames=9),
                 dict(seed=1, groups=["a"]), dict(seed=1, subset="untranscribed"),
                 dict(seed=3, rank=1, world_size=2)):
        got, want = list(b.minibatches(3, **opts)), list(a.minibatches(3, **opts))
        assert len(got) == len(want) > 0
        for x, y in zip(got, want):
            assert x.utts == y.utts and torch.equal(x.x, y.x) and torch.equal(x.x_lens, y.x_lens)
            assert torch.equal(x.y, y.y) and torch.equal(x.y_lens, y.y_lens) and torch.equal(x.aux["spk"], y.aux["spk"])
        assert not b.feats.window
    assert b.num_batches(3, max_frames=120) == a.num_batches(3, max_frames=120)


def test_config_checks():
    assert load_config(None)["train"]["data"] == "memory"
    with pytest.raises(ValueError, match="train.data: 'disk' is not memory or stream"):
        load_config(None, ["train.data=disk"])
    with pytest.raises(ValueError, match="train.buffer_frames: must be a positive integer"):
        load_config(None, ["train.data=stream", "train.buffer_frames=0"])


# ------------------------------------------------------------ train_nnet
def fake_ali_dir(d, lengths, seed=0):
    """An alignment dir for ``lengths`` (utt -> frames): a monophone
    transition model of 3 phones x 2 states and random transition ids."""
    import kaldi_hmm_gmm as khg

    from mtlasr import gmm, lang

    topo = khg.HmmTopology()
    topo.read(lang.topology_text([1, 2, 3], 2))
    tm, tree, am = gmm.init_mono(topo, [np.random.default_rng(seed).standard_normal((20, 3)).astype(np.float32)])
    d.mkdir()
    gmm.save_model(d / "final.mdl", tm, tree, am)
    rng = np.random.default_rng(seed)
    gmm.write_ali(d / "ali.1.gz", {u: rng.integers(1, tm.num_transition_ids + 1, n) for u, n in lengths.items()})
    return tm


def test_train_nnet_streams_to_the_same_model(tmp_path):
    """python3 -m mtlasr.bin.train_nnet with train.data stream: for chunks
    (a training set within one buffer, a frame-label task from the
    alignment's phones) and for CTC (with --extra-data), the
    same priors and final weights as with the data in memory; a small
    buffer trains too; a bad value of train.data stops before training."""
    from mtlasr.bin import train_nnet
    from mtlasr.units import write_units

    feats = toy_feats(24, dim=3, seed=5)
    d = write_data_dir(tmp_path / "train", feats)
    extra = write_data_dir(tmp_path / "extra", {f"x{k}": v for k, v in toy_feats(6, dim=3, seed=6).items()})
    fake_ali_dir(tmp_path / "ali", {u: x.shape[0] for u, x in feats.items()})
    rng = np.random.default_rng(1)
    (d / "text").write_text("".join(f"{u} {' '.join(rng.choice(list('abcd'), 3))}\n" for u in sorted(feats)))
    write_units(list("abcd"), "phone", tmp_path / "units")
    tiny = ["model.num_layers=1", "model.cell_dim=8", "model.proj_dim=4", "chunk.chunk=5", "chunk.left=3",
            "chunk.delay=1", "train.max_epochs=1", "train.minibatch=16", "train.num_threads=1"]
    ctc = ["model.criterion=ctc", "train.minibatch=4", "tasks.spk.targets=utt_label", "tasks.spk.source={data}/utt2spk",
           "tasks.spk.loss=ce", "tasks.spk.pooling=mean"]

    def train(name, sets, ali="ali", more=()):
        args = [a for s in tiny + sets for a in ("--set", s)]
        assert train_nnet.main([*args, "--device", "cpu", *more, str(d), str(tmp_path / ali),
                                str(tmp_path / name)]) == 0
        return torch.load(tmp_path / name / "final.pt", weights_only=False)["model"]

    def same(a, b):
        return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    (tmp_path / "phones.txt").write_text("<eps> 0\na 1\nb 2\nc 3\n")
    frame_task = ["tasks.ph.targets=frame_label", f"tasks.ph.source={tmp_path / 'phones.txt'}", "tasks.ph.loss=ce"]
    mem = train("ce_memory", frame_task)
    assert same(mem, train("ce_stream", frame_task + ["train.data=stream"]))
    assert "heads.ph.out.weight" in mem
    assert (tmp_path / "ce_memory/ali_train_pdf.counts").read_text() == \
        (tmp_path / "ce_stream/ali_train_pdf.counts").read_text()
    assert not same(mem, train("ce_small", ["train.data=stream", "train.buffer_frames=100"]))
    assert "data: stream" in (tmp_path / "ce_stream/config.yaml").read_text()
    ctc_mem = train("ctc_memory", ctc, "units", ["--extra-data", str(extra)])
    assert same(ctc_mem, train("ctc_stream", ctc + ["train.data=stream", "train.buffer_frames=100"], "units",
                               ["--extra-data", str(extra)]))
    assert train_nnet.main(["--set", "train.data=disk", str(d), str(tmp_path / "ali"), str(tmp_path / "bad")]) == 1
