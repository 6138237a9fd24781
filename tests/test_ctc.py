"""CTC criterion, sequence data, encoders and curriculum of the shared trainer."""

import math

import numpy as np
import pytest
import torch

from mtlasr.nnet.config import curriculum_labels, load_config
from mtlasr.nnet.ctc import ctc_loss, ctc_task_losses, greedy_units, unit_errors
from mtlasr.nnet.encoders import ConvBlstmEncoder, GluConvEncoder
from mtlasr.nnet.seqdata import SequenceDataset, ctc_min_frames
from mtlasr.nnet.targets import TaskTargets
from mtlasr.nnet.train import Trainer
from mtlasr.nnet.build import build_model, load_for_inference


def _logits(probs):
    """(T, V) probabilities -> (1, T, V) logits whose softmax gives them back."""
    return torch.log(torch.tensor(probs, dtype=torch.float64))[None]


def test_ctc_loss_hand_computed():
    # V = 2 (blank, a). T = 2, y = [a]: paths aa, a-, -a.
    p = [[0.3, 0.7], [0.6, 0.4]]
    want = -math.log(0.7 * 0.4 + 0.7 * 0.6 + 0.3 * 0.4)
    got = ctc_loss(_logits(p), torch.tensor([2]), torch.tensor([[1]]), torch.tensor([1]))
    assert got.item() == pytest.approx(want, rel=1e-6)
    # T = 3, y = [a, a]: the only path is a - a
    p = [[0.2, 0.8], [0.9, 0.1], [0.5, 0.5]]
    got = ctc_loss(_logits(p), torch.tensor([3]), torch.tensor([[1, 1]]), torch.tensor([2]))
    assert got.item() == pytest.approx(-math.log(0.8 * 0.9 * 0.5), rel=1e-6)
    # T = 2 cannot hold a, blank, a
    got = ctc_loss(_logits(p[:2]), torch.tensor([2]), torch.tensor([[1, 1]]), torch.tensor([2]))
    assert math.isinf(got.item())


def test_ctc_min_frames_and_skips():
    assert ctc_min_frames(np.array([1, 1, 2, 2, 2, 3])) == 6 + 3
    assert ctc_min_frames(np.array([4])) == 1
    feats = {"u1": np.zeros((8, 3), np.float32), "u2": np.zeros((3, 3), np.float32),
             "u3": np.zeros((0, 3), np.float32), "u4": np.zeros((5, 3), np.float32)}
    labels = {"u1": np.array([1, 2]), "u2": np.array([1, 1, 1]), "u3": np.array([1])}
    ds = SequenceDataset(feats, labels, out_frames=lambda t: t)
    assert ds.utts == ["u1"]
    assert "CTC infeasible" in ds.skipped["u2"] and ds.skipped["u3"] == "no frames"
    assert ds.skipped["u4"] == "no transcript"
    # with 4x subsampling even u1 (8 frames -> 2 outputs, 2 units) is feasible, but not 3 repeated units
    ds = SequenceDataset(feats, labels, out_frames=lambda t: -(-t // 4), untranscribed=["u4"])
    assert ds.utts == ["u1", "u4"] and ds.num_untranscribed == 1


def test_greedy_and_unit_errors():
    # frames: a a - a b b -  ->  a a b
    seq = [1, 1, 0, 1, 2, 2, 0]
    logits = torch.nn.functional.one_hot(torch.tensor([seq]), 3).float()
    assert greedy_units(logits, torch.tensor([7])) == [[1, 1, 2]]
    assert greedy_units(logits, torch.tensor([3])) == [[1]]
    assert unit_errors([[1, 1, 2]], [[1, 2]]) == (1, 2)


@pytest.mark.parametrize("enc", ["conv_blstm", "glu_conv"])
def test_padding_does_not_change_outputs(enc):
    """A padded utterance in a batch gives the outputs it gives alone."""
    torch.manual_seed(0)
    if enc == "conv_blstm":
        m = ConvBlstmEncoder(6, num_layers=2, cell_dim=5, conv_channels=[3, 3], conv_dim=7, subsampling=4)
    else:
        m = GluConvEncoder(6, num_layers=3, channels=5, kernel=5, subsampling=2)
    m.eval()
    long, short = torch.randn(1, 21, 6), torch.randn(1, 10, 6)
    batch = torch.zeros(2, 21, 6)
    batch[0], batch[1, :10] = long[0], short[0]
    lens = torch.tensor([21, 10])
    with torch.no_grad():
        both = m(batch, lengths=lens)
        alone = m(short, lengths=torch.tensor([10]))
    n = int(m.output_lengths(torch.tensor([10]), len(m.layers))[0])
    assert n == (3 if enc == "conv_blstm" else 5)
    for a, b in zip(both, alone):
        torch.testing.assert_close(a[1, :n], b[0, :n], atol=1e-5, rtol=1e-5)


def test_config_checks():
    with pytest.raises(ValueError, match="model.encoder"):
        load_config(None, ["model.encoder=transformer"])
    with pytest.raises(ValueError, match="use it with model.criterion ctc"):
        load_config(None, ["model.encoder=conv_blstm", "model.subsampling=1"])
    with pytest.raises(ValueError, match="subsampling"):
        load_config(None, ["model.criterion=ctc", "model.encoder=conv_blstm", "model.subsampling=3"])
    with pytest.raises(ValueError, match="frame alignment"):
        load_config(None, ["model.criterion=ctc", "tasks.ph.targets=frame_label", "tasks.ph.source=x",
                           "tasks.ph.loss=ce"])
    with pytest.raises(ValueError, match="curriculum: the stages have 3 epochs"):
        load_config(None, ["model.criterion=ctc", "train.max_epochs=4", "train.curriculum=[[es, 3]]"])


def test_curriculum_schedule():
    cfg = load_config(None, ["model.criterion=ctc", "train.max_epochs=6",
                             'train.curriculum=[["es", 2], ["es,en", 2], ["all", 2]]'])
    got = [curriculum_labels(cfg["train"], e) for e in range(6)]
    assert got == [["es"], ["es"], ["es", "en"], ["es", "en"], None, None]


def _toy(n_utts=24, seed=0, dim=5):
    """Utterances whose frames spell their units: unit k's frames have feature k high."""
    rng = np.random.default_rng(seed)
    feats, labels, lang = {}, {}, {}
    for i in range(n_utts):
        units = rng.integers(1, dim, size=rng.integers(2, 5))
        frames = []
        for u in units:
            f = np.zeros((rng.integers(3, 6), dim), np.float32)
            f[:, u] = 3.0
            frames.append(f)
            frames.append(np.zeros((2, dim), np.float32))
        utt = f"u{i:03d}"
        feats[utt] = np.concatenate(frames) + rng.normal(0, 0.1, (sum(len(f) for f in frames), dim)).astype(np.float32)
        labels[utt] = units.astype(np.int64)
        lang[utt] = "es" if i % 2 else "en"
    return feats, labels, lang


def _spk_targets(utts, lang):
    t = TaskTargets("lang", "utt_label", 2, 1, "utt2lang", classes=["en", "es"])
    for u in utts:
        t.values[u] = np.asarray(0 if lang[u] == "en" else 1, dtype=np.int64)
    return t


@pytest.mark.parametrize("enc", ["lstmp", "conv_blstm", "glu_conv"])
def test_ctc_training_learns_and_resumes_identically(tmp_path, enc):
    """A tiny CTC model with a GRL language head: the valid unit error rate
    falls well below chance, and a run stopped after epoch 3 (inside the curriculum) and resumed
    ends with the same weights as an uninterrupted one."""
    torch.set_num_threads(1)
    feats, labels, lang = _toy(40)
    sets = ["model.criterion=ctc", f"model.encoder={enc}", "model.num_layers=2", "model.cell_dim=24",
            "model.proj_dim=0", "model.conv_channels=[4]", "model.conv_dim=16", "model.kernel=3",
            "train.max_epochs=15", "train.minibatch=4", "train.lr_initial=0.02", "train.lr_final=0.02",
            "train.num_threads=1", "train.log_interval=100",
            'train.curriculum=[["es", 2], ["all", 13]]',
            "tasks.lang.targets=utt_label", "tasks.lang.source={data}/utt2lang", "tasks.lang.loss=ce",
            "tasks.lang.pooling=mean", "tasks.lang.grl=true", "tasks.lang.schedule=ramp", "tasks.lang.fork=first",
            "tasks.lang.weight=0.5"]
    cfg = load_config(None, sets)
    sub = 2 if enc != "lstmp" else 1
    cfg["model"]["subsampling"] = sub
    if enc == "lstmp":
        cfg["model"]["proj_dim"] = 0

    def data(utts):
        f = {u: feats[u] for u in utts}
        return SequenceDataset(f, labels, lambda t: -(-t // sub), {"lang": _spk_targets(utts, lang)},
                               groups=lang)

    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    train_utts = sorted(feats)[:30]
    valid_utts = sorted(feats)[30:]
    tr = Trainer(cfg, data(train_utts), data(valid_utts), 5, tmp_path / "a", torch.device("cpu"))
    best = tr.run()
    hist = tr.history
    assert hist[-1]["valid_ter"] < 0.5 and hist[-1]["valid_ter"] < hist[0]["valid_ter"]
    assert "train_lang_loss" in hist[0]
    # a run stopped after epoch 3 (its checkpoint.pt is then epoch 3's), resumed
    import shutil

    cfg2 = load_config(None, sets)
    cfg2["model"]["subsampling"] = sub
    part = Trainer(cfg2, data(train_utts), data(valid_utts), 5, tmp_path / "b", torch.device("cpu"))
    shutil.copyfile(tmp_path / "a" / "epoch-3.pt", tmp_path / "b" / "checkpoint.pt")
    assert part.try_resume() and part.start_epoch == 3
    part.run()
    a = torch.load(tmp_path / "a" / "epoch-15.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / "epoch-15.pt", weights_only=False)["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    # inference model: no language head, same main outputs
    model, c = load_for_inference(tmp_path / "a" / "final.pt")
    assert list(model.heads) == ["main"] and c["model"]["criterion"] == "ctc"
    assert best["epoch"] >= 1


def test_init_from_pretrained(tmp_path):
    feats, labels, lang = _toy(8)
    sets = ["model.criterion=ctc", "model.encoder=glu_conv", "model.num_layers=2", "model.cell_dim=8",
            "model.kernel=3", "train.max_epochs=1", "train.minibatch=4", "train.num_threads=1"]
    cfg = load_config(None, sets)
    ds = SequenceDataset(feats, labels, lambda t: t)
    for d in ("pre", "mtl"):
        (tmp_path / d).mkdir()
    Trainer(cfg, ds, None, 5, tmp_path / "pre", torch.device("cpu")).run()
    cfg2 = load_config(None, sets + [f"train.init={tmp_path / 'pre' / 'final.pt'}"])
    tr = Trainer(cfg2, ds, None, 5, tmp_path / "mtl", torch.device("cpu"))
    pre = torch.load(tmp_path / "pre" / "final.pt", weights_only=False)["model"]
    for k, v in tr.model.state_dict().items():
        torch.testing.assert_close(v, pre[k])
    cfg3 = load_config(None, sets + ["model.cell_dim=6", f"train.init={tmp_path / 'pre' / 'final.pt'}"])
    with pytest.raises(ValueError, match="does not fit this model"):
        Trainer(cfg3, ds, None, 5, tmp_path / "bad", torch.device("cpu"))


def test_untranscribed_utterances_train_only_the_aux_task():
    feats, labels, lang = _toy(6)
    cfg = load_config(None, ["model.criterion=ctc", "model.encoder=glu_conv", "model.num_layers=1",
                             "model.cell_dim=4", "model.kernel=3",
                             "tasks.lang.targets=utt_label", "tasks.lang.source=x", "tasks.lang.loss=ce",
                             "tasks.lang.pooling=mean"])
    model = build_model(cfg, 5, 5, {"lang": 2})
    utts = sorted(feats)
    ds = SequenceDataset(feats, {u: labels[u] for u in utts[:3]}, lambda t: t, {"lang": _spk_targets(utts, lang)},
                         untranscribed=utts[3:])
    batch = ds.batch([3, 4, 5])  # only untranscribed
    _, losses, has = ctc_task_losses(model, batch, cfg["tasks"])
    assert not has.any() and losses["main"].item() == 0.0 and losses["lang"].item() > 0


def test_ctc_norm_token_divides_each_utterance_by_its_units():
    """model.ctc_norm token: the mean over utterances of -ln p(y|x) / |y|
    (torch's ctc_loss reduction "mean"); utterance: the plain mean; bad
    names are refused."""
    feats, labels, _ = _toy(6)
    ds = SequenceDataset(feats, labels, lambda t: t)
    batch = ds.batch(list(range(6)))
    assert len(set(batch.y_lens.tolist())) > 1  # different lengths, or the check proves nothing
    base = ["model.criterion=ctc", "model.encoder=glu_conv", "model.num_layers=1", "model.cell_dim=4",
            "model.kernel=3"]
    torch.manual_seed(0)
    model = build_model(load_config(None, base), 5, 5)
    assert model.ctc_norm == "utterance"
    with torch.no_grad():
        logits, losses, _ = ctc_task_losses(model, batch, {})
        per = ctc_loss(logits, model.output_lengths(batch.x_lens), batch.y, batch.y_lens)
        torch.testing.assert_close(losses["main"], per.mean())
        tok_model = build_model(load_config(None, base + ["model.ctc_norm=token"]), 5, 5)
        tok_model.load_state_dict(model.state_dict())
        assert tok_model.ctc_norm == "token"
        _, tok, _ = ctc_task_losses(tok_model, batch, {})
        torch.testing.assert_close(tok["main"], (per / batch.y_lens).mean())
        logp = torch.log_softmax(logits, -1).transpose(0, 1)
        ref = torch.nn.functional.ctc_loss(logp, batch.y, model.output_lengths(batch.x_lens), batch.y_lens,
                                           reduction="mean")
        torch.testing.assert_close(tok["main"], ref)
    with pytest.raises(ValueError, match="model.ctc_norm: 'frame'"):
        load_config(None, base + ["model.ctc_norm=frame"])


def test_disjoint_batches_alternate_speech_and_speaker(tmp_path, monkeypatch):
    """train.batching disjoint (seed 003 sec. 3.2.1): every update takes one
    batch of transcribed utterances (its CTC loss) and one of speaker-only
    utterances (its auxiliary loss), the speaker batches cycling; mixed
    batching mixes both kinds in a batch."""
    import mtlasr.nnet.train as train_mod

    torch.set_num_threads(1)
    feats, labels, lang = _toy(20)
    utts = sorted(feats)
    speech, spk_only = utts[:12], utts[12:]
    sets = ["model.criterion=ctc", "model.encoder=glu_conv", "model.num_layers=1", "model.cell_dim=4",
            "model.kernel=3", "train.max_epochs=2", "train.minibatch=3", "train.num_threads=1",
            "tasks.lang.targets=utt_label", "tasks.lang.source=x", "tasks.lang.loss=ce",
            "tasks.lang.pooling=mean", "tasks.lang.schedule=dynamic"]

    def data():
        return SequenceDataset(feats, {u: labels[u] for u in speech}, lambda t: t,
                               {"lang": _spk_targets(utts, lang)}, untranscribed=spk_only)

    seen = []
    real = train_mod.task_losses

    def spy(model, batch, tasks, sl=None, state=None):
        seen.append(list(batch.utts))
        return real(model, batch, tasks, sl, state)

    monkeypatch.setattr(train_mod, "task_losses", spy)
    (tmp_path / "d").mkdir()
    tr = Trainer(load_config(None, sets + ["train.batching=disjoint"]), data(), None, 5, tmp_path / "d",
                 torch.device("cpu"))
    tr.run()
    assert len(seen) == 2 * 2 * 4  # 2 epochs x 4 speech batches x (speech, speaker)
    for k in range(0, len(seen), 2):
        assert set(seen[k]) <= set(speech) and set(seen[k + 1]) <= set(spk_only)
    # every speech utterance once per epoch; the 8 speaker-only ones (3 batches) cycle
    assert sorted(u for b in seen[0:8:2] for u in b) == speech
    assert set(u for b in seen[1:8:2] for u in b) == set(spk_only)
    assert tr.history[0]["train_lang_loss"] > 0

    seen.clear()
    (tmp_path / "m").mkdir()
    Trainer(load_config(None, sets), data(), None, 5, tmp_path / "m", torch.device("cpu")).run()
    assert len(seen) == 2 * 7 and any(set(b) & set(speech) and set(b) & set(spk_only) for b in seen)

    only_speech = SequenceDataset({u: feats[u] for u in speech}, labels, lambda t: t,
                                  {"lang": _spk_targets(speech, lang)})
    (tmp_path / "x").mkdir()
    with pytest.raises(ValueError, match="needs transcribed and speaker-only"):
        Trainer(load_config(None, sets + ["train.batching=disjoint"]), only_speech, None, 5, tmp_path / "x",
                torch.device("cpu")).run()
    with pytest.raises(ValueError, match="disjoint batches need model.criterion ctc and an auxiliary task"):
        load_config(None, ["model.criterion=ctc", "train.batching=disjoint"])


def test_speaker_segments_are_cropped_at_random_reproducibly():
    """sequence.crop_untranscribed (seed 003 sec. 3.4): each speaker-only
    utterance is cut to a window of N frames, drawn anew per seed, the same
    for the same seed; transcribed utterances and shorter ones stay whole."""
    feats, labels, lang = _toy(12)
    utts = sorted(feats)
    speech, spk_only = utts[:6], utts[6:]
    ds = SequenceDataset(feats, {u: labels[u] for u in speech}, lambda t: t,
                         {"lang": _spk_targets(utts, lang)}, untranscribed=spk_only)
    n = 9
    assert sum(feats[u].shape[0] > n for u in spk_only) >= 4 and any(feats[u].shape[0] > n for u in speech)

    def windows(seed):
        out = {}
        for b in ds.minibatches(2, seed=seed, crop_frames=n):
            for k, u in enumerate(b.utts):
                out[u] = b.x[k, : b.x_lens[k]].numpy()
        return out

    w0, w0b, w1 = windows(3), windows(3), windows(4)
    assert sorted(w0) == utts
    for u in speech:
        np.testing.assert_array_equal(w0[u], feats[u])
    starts = {}
    for u in spk_only:
        x = feats[u]
        assert w0[u].shape[0] == min(n, x.shape[0])
        np.testing.assert_array_equal(w0b[u], w0[u])
        # a window of the utterance's own frames
        s = [s for s in range(x.shape[0] - w0[u].shape[0] + 1) if np.array_equal(x[s: s + len(w0[u])], w0[u])]
        assert s, u
        starts[u] = s[0]
    assert any(not np.array_equal(w0[u], w1[u]) for u in spk_only)      # another seed, other windows
    assert len(set(starts.values())) > 1                                # not always the same place
    # batching sees the cropped lengths
    assert all(t <= max(n, max(feats[u].shape[0] for u in speech))
               for b in ds.minibatches(2, seed=0, crop_frames=n, subset="untranscribed") for t in b.x_lens)
    with pytest.raises(ValueError, match="crop_frames needs a seed"):
        next(ds.minibatches(2, crop_frames=n))
    with pytest.raises(ValueError, match="crop_untranscribed: must be an integer >= 0"):
        load_config(None, ["sequence.crop_untranscribed=-1"])


def test_encoder_frozen_for_the_first_updates(tmp_path):
    """train.freeze_encoder_updates (seed 003 sec. 4.2): the first N updates
    move the task heads only; then the whole network trains; the count
    survives a resume."""
    torch.set_num_threads(1)
    feats, labels, lang = _toy(12)
    utts = sorted(feats)
    sets = ["model.criterion=ctc", "model.encoder=glu_conv", "model.num_layers=1", "model.cell_dim=4",
            "model.kernel=3", "train.max_epochs=1", "train.minibatch=3", "train.num_threads=1",
            "tasks.lang.targets=utt_label", "tasks.lang.source=x", "tasks.lang.loss=ce",
            "tasks.lang.pooling=mean", "train.freeze_encoder_updates=5"]

    def data():
        return SequenceDataset(feats, labels, lambda t: t, {"lang": _spk_targets(utts, lang)})

    def params(tr):
        return {k: v.detach().clone() for k, v in tr.model.named_parameters()}

    tr = Trainer(load_config(None, sets), data(), None, 5, tmp_path / "a", torch.device("cpu"))
    (tmp_path / "a").mkdir()
    p0 = params(tr)
    tr.run()                      # 4 updates: all frozen
    p1 = params(tr)
    assert tr.updates == 4
    for k in p0:
        moved = not torch.equal(p0[k], p1[k])
        assert moved == k.startswith("heads."), k
    # resumed for a second epoch: 1 more frozen update, then the encoder moves too
    tr2 = Trainer(load_config(None, sets[:5] + ["train.max_epochs=2"] + sets[6:]), data(), None, 5,
                  tmp_path / "a", torch.device("cpu"))
    assert tr2.try_resume() and tr2.updates == 4
    tr2.run()
    p2 = params(tr2)
    assert tr2.updates == 8 and not tr2._frozen
    assert all(p.requires_grad for k, p in tr2.model.named_parameters())
    assert any(not torch.equal(p1[k], p2[k]) for k in p1 if not k.startswith("heads."))
    with pytest.raises(ValueError, match="freeze_encoder_updates: must be an integer >= 0"):
        load_config(None, ["train.freeze_encoder_updates=1.5"])
