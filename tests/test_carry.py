"""State carry-over training (``chunk.carry``; Kaldi nnet1's multi-stream
training): the chunk geometry; every labelled frame of every utterance
exactly once per epoch, with its label and its input frame ``delay``
frames later, each stream running its utterances chunk after chunk; the
network outputs of the streamed chunks with the carried state equal to
those of each utterance run whole (which is how decoding runs it); the
ranks' rows of a step make the one-process step; the streaming dataset
gives the in-memory one's minibatches; training is reproducible and
learns; bad settings are named.
"""

import numpy as np
import pytest
import torch

from mtlasr.nnet.config import load_config
from mtlasr.nnet.data import IGNORE, ChunkDataset, ChunkSpec, stream_plan, utterance_input, utterance_output
from mtlasr.nnet.evaluate import evaluate, task_losses
from mtlasr.nnet.model import AcousticModel, LstmState
from mtlasr.nnet.stream import FeatureSource, StreamChunkDataset
from mtlasr.nnet.targets import TaskTargets

from test_stream_data import write_data_dir  # noqa: E402

SPEC = ChunkSpec(chunk=6, left=4, delay=2, carry=True)


def toy(n=13, dim=3, seed=0, lo=1, hi=40):
    """Features of n utterances of lo..hi-1 frames whose first dimension
    tags them (utterance k, frame t: k * 1000 + t), and tagged labels."""
    rng = np.random.default_rng(seed)
    feats, labels = {}, {}
    for k in range(n):
        t = int(rng.integers(lo, hi))
        x = rng.standard_normal((t, dim)).astype(np.float32)
        x[:, 0] = k * 1000 + np.arange(t)
        feats[f"s{k % 3}-u{k:03d}"] = x
        labels[f"s{k % 3}-u{k:03d}"] = k * 1000 + np.arange(t, dtype=np.int64)
    return feats, labels


def test_geometry():
    assert SPEC.width == 6 and SPEC.out_slice == slice(0, 6)
    assert SPEC.starts(10) == [0, 6] and SPEC.num_chunks(10) == 2     # 10 + 2 delay frames
    assert SPEC.starts(11) == [0, 6, 12] and SPEC.num_chunks(11) == 3
    assert SPEC.label_start(6) == 4
    assert list(SPEC.input_index(6, 10)) == [6, 7, 8, 9, 9, 9]
    old = ChunkSpec(chunk=6, left=4, delay=2)
    assert old.width == 12 and old.num_chunks(10) == 2 and old.label_start(6) == 6


def test_stream_plan_takes_the_first_free_stream():
    # chunks 3, 1, 2, 2 on 2 streams: u0 on s0 (steps 0-2), u1 on s1 (0), u2 on s1 (1-2), u3 on s0 (3-4)
    assert stream_plan(np.array([3, 1, 2, 2]), np.arange(4), 2) == [(0, 0, 0), (1, 0, 1), (1, 1, 2), (0, 3, 3)]


@pytest.mark.parametrize("streams", [1, 4, 20])
def test_every_label_once_in_order_per_stream(streams):
    feats, labels = toy()
    ds = ChunkDataset(feats, labels, SPEC)
    steps = list(ds.minibatches(streams, seed=3))
    assert len(steps) == ds.num_minibatches(streams, seed=3)
    seen = []
    prev = [None] * streams   # per stream: (utterance, last label frame)
    for x, y, _, reset in steps:
        assert x.shape == (streams, 6, 3) and y.shape == (streams, 6) and reset.shape == (streams,)
        for b in range(streams):
            lab = y[b][y[b] != IGNORE]
            if len(lab) == 0:
                continue
            utt, frames = int(lab[0]) // 1000, (lab % 1000).numpy()
            # consecutive frames; the input frame of output position j is the label frame + delay
            assert (np.diff(frames) == 1).all()
            pos = np.nonzero((y[b] != IGNORE).numpy())[0]
            t = len(labels[list(labels)[utt]])
            want = np.minimum(frames + SPEC.delay, t - 1)
            assert np.array_equal(x[b, pos, 0].numpy(), utt * 1000 + want)
            # a stream starts an utterance at label frame 0 (state reset) or goes on where it stopped
            if bool(reset[b]):
                assert frames[0] == 0 and pos[0] == SPEC.delay
            else:
                assert prev[b] == (utt, frames[0] - 1)
            prev[b] = (utt, frames[-1])
            seen += [(utt, int(f)) for f in frames]
    want = [(k, f) for k, y in enumerate(labels.values()) for f in range(len(y))]
    assert sorted(seen) == want  # every label frame exactly once
    # the same order for the same seed, another for another
    again = list(ds.minibatches(streams, seed=3))
    assert all(torch.equal(a[1], b[1]) for a, b in zip(steps, again))
    if streams > 1:
        other = list(ds.minibatches(streams, seed=4))
        assert len(other) != len(steps) or any(not torch.equal(a[1], b[1]) for a, b in zip(steps, other))


def test_streamed_chunks_with_carried_state_equal_the_whole_utterance():
    """Training's forward pass (streams of chunks, state carried and reset,
    inactive streams at the end) gives each frame the output that decoding
    (the utterance whole, utterance_input/utterance_output) gives it."""
    torch.manual_seed(0)
    feats, labels = toy(n=9, seed=1, hi=30)
    feats = {u: x * np.float32(1e-3) for u, x in feats.items()}   # tame the tags as inputs
    ds = ChunkDataset(feats, labels, SPEC)
    model = AcousticModel(3, 9000, num_layers=2, cell_dim=8, proj_dim=4).eval()
    state = LstmState()
    got = {}
    with torch.no_grad():
        for batch in ds.minibatches(4, seed=0):
            logits, _, mask = task_losses(model, batch, {}, SPEC.out_slice, state)
            for b, j in mask.nonzero().tolist():
                got[int(batch[1][b, j])] = logits[b, j]
        for k, (u, x) in enumerate(feats.items()):
            out = utterance_output(model(utterance_input(x, SPEC), heads=["main"])["main"], SPEC, x.shape[0])
            assert out.shape == (x.shape[0], 9000)
            for t in range(x.shape[0]):
                torch.testing.assert_close(got[k * 1000 + t], out[t], rtol=1e-5, atol=1e-6)
    # evaluate() carries the state too: its loss is that of the whole utterances
    y = torch.from_numpy(np.concatenate(list(labels.values())))
    whole = torch.cat([utterance_output(model(utterance_input(x, SPEC), heads=["main"])["main"], SPEC, x.shape[0])
                       for x in feats.values()])
    ce = torch.nn.functional.cross_entropy(whole, y).item()
    assert evaluate(model, ds, 4, torch.device("cpu"))["loss"] == pytest.approx(ce, rel=1e-5)
    # without the carried state the outputs differ (the test can fail)
    x, yb, aux, reset = next(iter(ds.minibatches(4, seed=0)))
    _, l1, _ = task_losses(model, (x, yb, aux, reset), {}, SPEC.out_slice, LstmState())
    st = LstmState()
    task_losses(model, (x, yb, aux, reset), {}, SPEC.out_slice, st)
    _, l2, _ = task_losses(model, (x, yb, aux, torch.zeros(4, dtype=torch.bool)), {}, SPEC.out_slice, st)
    assert not torch.isclose(l1["main"], l2["main"])


def test_ranks_rows_make_the_one_process_step():
    feats, labels = toy(n=11, seed=2)
    ds = ChunkDataset(feats, labels, SPEC)
    for w in (2, 3):
        one = list(ds.minibatches(3 * w, seed=7))
        shards = [list(ds.minibatches(3, seed=7, rank=r, world_size=w)) for r in range(w)]
        assert all(len(s) == len(one) == ds.num_minibatches(3, 7, w) for s in shards)
        nones = 0
        for k, glob in enumerate(one):
            for r, s in enumerate(shards):
                rows = slice(3 * r, 3 * r + 3)
                if s[k] is None:  # this rank's streams have run out: all its rows unlabelled
                    assert (glob[1][rows] == IGNORE).all()
                    nones += 1
                    continue
                assert torch.equal(s[k][0], glob[0][rows]) and torch.equal(s[k][1], glob[1][rows])
                assert torch.equal(s[k][3], glob[3][rows])
        assert nones > 0


def test_stream_dataset_gives_the_memory_minibatches(tmp_path):
    from mtlasr import features

    feats, _ = toy(n=12, seed=3)
    d = write_data_dir(tmp_path / "data", {u: x.astype(np.float64) for u, x in feats.items()})
    mem = features.load_features(d, norm_vars=True)
    labels = {u: np.arange(x.shape[0]) % 7 for u, x in mem.items()}
    spk = TaskTargets("spk", "utt_label", 3, 1, "utt2spk", {u: np.int64(i % 3) for i, u in enumerate(mem)},
                      classes=["a", "b", "c"])
    src = FeatureSource([d], norm_vars=True)
    a = ChunkDataset(mem, labels, SPEC, {"spk": spk})
    b = StreamChunkDataset(src, labels, SPEC, {"spk": spk}, buffer_frames=10)
    assert len(a) == len(b)
    for w, r in ((1, 0), (2, 1)):
        sa = list(a.minibatches(3, seed=1, rank=r, world_size=w))
        sb = list(b.minibatches(3, seed=1, rank=r, world_size=w))
        assert len(sa) == len(sb) and [x is None for x in sa] == [x is None for x in sb]
        for p, q in zip(sa, sb):
            if p is not None:
                assert all(torch.equal(u, v) for u, v in zip(p[:2] + p[3:], q[:2] + q[3:]))
                assert torch.equal(p[2]["spk"], q[2]["spk"])
        assert len(b.feats.window) == 0  # released at the end of the epoch
    # while serving, the window holds only the streams' current utterances
    it = b.minibatches(3, seed=1)
    for _ in range(4):
        next(it)
        assert 1 <= len(b.feats.window) <= 3
    it.close()


def test_trainer_learns_and_repeats(tmp_path):
    from mtlasr.nnet.train import Trainer

    feats, labels = toy(n=16, seed=4, lo=10, hi=50)
    rng = np.random.default_rng(0)
    # the label is the sign of dimension 1 of its frame, which the output reads 2 frames (delay) later
    for u, x in feats.items():
        x[:, 0] = 0
        labels[u] = (x[:, 1] > 0).astype(np.int64)
        x[:, 2] = rng.standard_normal(len(x))
    cfg = load_config(None, ["model.num_layers=1", "model.cell_dim=16", "model.proj_dim=8", "chunk.chunk=6",
                             "chunk.delay=2", "chunk.carry=true", "train.minibatch=4", "train.max_epochs=6",
                             "train.lr_initial=0.02", "train.lr_final=0.01", "train.num_threads=1"])
    spec = ChunkSpec(**cfg["chunk"])
    runs = []
    for k in range(2):
        (tmp_path / str(k)).mkdir()
        tr = Trainer(cfg, ChunkDataset(feats, labels, spec), ChunkDataset(feats, labels, spec), 2, tmp_path / str(k),
                     torch.device("cpu"))
        tr.run()
        runs.append(tr.history)
    assert [r["valid_loss"] for r in runs[0]] == [r["valid_loss"] for r in runs[1]]
    # chance is 0.5 (measured: 0.86 after 6 epochs)
    assert runs[0][-1]["valid_acc"] > 0.8 and runs[0][-1]["valid_loss"] < runs[0][0]["train_loss"]


@pytest.mark.parametrize("sets,msg", [
    (["chunk.carry=true", "chunk.delay=6", "chunk.chunk=6"], "must be shorter than the chunk"),
    (["chunk.carry=2"], "chunk.carry: must be true or false"),
    (["chunk.chunk=0"], "chunk.chunk: must be an integer >= 1"),
])
def test_bad_settings_named(sets, msg):
    with pytest.raises(ValueError, match=msg):
        load_config(None, sets)
