"""Speaker probes on frozen layers (seed 002 sec. 4.2): the probe finds
speaker identity where it is present and not where it is absent, the
held-out split, and the probe_layers command end to end."""

import logging

import kaldiio
import numpy as np
import pytest
import torch

from mtlasr.bin import probe_layers
from mtlasr.features import cmvn_stats
from mtlasr.nnet.config import load_config
from mtlasr.nnet.model import AcousticModel
from mtlasr.nnet.probe import (combine_models, evaluate_layers, layer_representations, probe_accuracy,
                               resolve_layers, split_by_speaker, train_probe)

CHUNK = {"chunk": 10, "left": 5, "delay": 2}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny full-batch problems: extra threads only spin (and the machine is shared)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def synthetic(num_spk=6, per_spk=6, dim=6, frames=30, seed=0):
    """Features whose speaker is a fixed offset added to noise: utt -> (T, D), utt2spk."""
    rng = np.random.default_rng(seed)
    offsets = 1.5 * rng.standard_normal((num_spk, dim))
    feats, utt2spk = {}, {}
    for s in range(num_spk):
        for i in range(per_spk):
            utt = f"spk{s}_u{i}"
            feats[utt] = (offsets[s] + rng.standard_normal((frames + 3 * i, dim))).astype(np.float32)
            utt2spk[utt] = f"spk{s}"
    return feats, utt2spk


def tiny_model(dim=6, num_layers=2):
    torch.manual_seed(0)
    return AcousticModel(dim, 3, num_layers=num_layers, cell_dim=16, proj_dim=8)


def test_probe_finds_speaker_information_only_where_present():
    feats, utt2spk = synthetic()
    model = tiny_model()
    reps = layer_representations(model, {"chunk": CHUNK}, feats, [1, 2], "cpu")
    assert sorted(reps) == [1, 2]
    assert all(reps[lay][u].shape == (x.shape[0], 8) and reps[lay][u].dtype == np.float32
               for lay in reps for u, x in feats.items())
    assert model.training  # the caller's mode is restored
    real = evaluate_layers(reps, utt2spk, seeds=[0, 1], epochs=150)
    rng = np.random.default_rng(1)
    labels = list(utt2spk.values())
    rng.shuffle(labels)
    shuffled = evaluate_layers(reps, dict(zip(utt2spk, labels)), seeds=[0, 1, 2, 3], epochs=150)
    for lay in (1, 2):
        assert real[lay]["chance_uniform"] == pytest.approx(1 / 6)
        assert real[lay]["n_test"] == 12 and real[lay]["n_speakers"] == 6
        assert real[lay]["acc_mean"] >= 0.75, real
        assert shuffled[lay]["acc_mean"] <= 0.4, shuffled
    # frame-level probe and a hidden layer work too
    tr, te = split_by_speaker(list(feats), utt2spk, 2, seed=0)
    spk = sorted(set(utt2spk.values()))
    ytr = [spk.index(utt2spk[u]) for u in tr]
    yte = [spk.index(utt2spk[u]) for u in te]
    for opts in ({"pooling": "frame"}, {"hidden": 16}):
        probe = train_probe([reps[1][u] for u in tr], ytr, 6, epochs=100, **opts)
        assert probe_accuracy(probe, [reps[1][u] for u in te], yte, ytr)["accuracy"] >= 0.75


def test_train_probe_deterministic_and_errors():
    feats, utt2spk = synthetic(num_spk=3, per_spk=3)
    xs = list(feats.values())
    y = [int(utt2spk[u][3:]) for u in feats]
    a = train_probe(xs, y, 3, epochs=20, seed=5).log_probs(xs)
    b = train_probe(xs, y, 3, epochs=20, seed=5).log_probs(xs)
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="labels"):
        train_probe(xs, y[:-1], 3)
    with pytest.raises(ValueError, match="0..2"):
        train_probe(xs, [3] * len(xs), 3)
    with pytest.raises(ValueError, match="pooling"):
        train_probe(xs, y, 3, pooling="max")
    with pytest.raises(ValueError, match="does not exist"):
        layer_representations(tiny_model(), {"chunk": CHUNK}, feats, [3])


def test_combine_models():
    def res(mean, std):
        return {1: {"accs": [mean - std, mean + std], "acc_mean": mean, "acc_std": std, "n_test": 4,
                    "n_speakers": 2, "chance_uniform": 0.5, "chance_majority": 0.5}}
    one = combine_models([res(0.8, 0.1)])
    assert one[1]["acc_mean"] == 0.8 and one[1]["acc_std"] == 0.1 and one[1]["n_models"] == 1
    three = combine_models([res(0.6, 0.1), res(0.8, 0.3), res(1.0, 0.2)])[1]
    assert three["acc_mean"] == pytest.approx(0.8) and three["acc_std"] == pytest.approx(0.2)
    assert three["accs"] == [0.6, 0.8, 1.0] and three["n_models"] == 3
    assert three["probe_std"] == pytest.approx(0.2) and three["n_test"] == 4
    with pytest.raises(ValueError, match="no model"):
        combine_models([])
    with pytest.raises(ValueError, match=r"model 1 was probed on layers \[2\]"):
        combine_models([res(0.5, 0), {2: res(0.5, 0)[1]}])


def test_resolve_layers():
    assert resolve_layers("all", 3) == [1, 2, 3]
    assert resolve_layers("first mid last", 3) == [1, 2, 3]
    assert resolve_layers("first mid last", 2) == [1, 2]
    assert resolve_layers("input 2", 3) == [0, 2]
    with pytest.raises(ValueError, match="'4' does not exist.*3 shared layers"):
        resolve_layers("1 4", 3)


def test_split_by_speaker(caplog):
    utt2spk = {f"a{i}": "a" for i in range(5)}
    utt2spk.update({f"b{i}": "b" for i in range(3)})
    utt2spk.update({f"c{i}": "c" for i in range(2)})  # too few: training only
    utts = sorted(utt2spk)
    with caplog.at_level(logging.WARNING):
        tr, te = split_by_speaker(utts, utt2spk, held_out_per_speaker=2, seed=0)
    assert "1 of 3 speakers" in caplog.text and " c" in caplog.text
    assert sorted(tr + te) == utts and not set(tr) & set(te)
    for spk in "ab":
        assert sum(utt2spk[u] == spk for u in te) == 2
        assert any(utt2spk[u] == spk for u in tr)
    assert not any(utt2spk[u] == "c" for u in te)
    assert {utt2spk[u] for u in te} <= {utt2spk[u] for u in tr}
    assert split_by_speaker(utts, utt2spk, 2, seed=0) == (tr, te)
    assert any(split_by_speaker(utts, utt2spk, 2, seed=s)[1] != te for s in range(1, 5))
    with pytest.raises(KeyError, match="zz"):
        split_by_speaker(["zz"], utt2spk)


@pytest.fixture
def tiny_setup(tmp_path):
    feats, utt2spk = synthetic(num_spk=4, per_spk=4, dim=5, frames=25)
    data = tmp_path / "data"
    data.mkdir()
    with kaldiio.WriteHelper(f"ark,scp:{data}/feats.ark,{data}/feats.scp") as w:
        for u, x in feats.items():
            w(u, x)
    with kaldiio.WriteHelper(f"ark,scp:{data}/cmvn.ark,{data}/cmvn.scp") as w:
        for spk in sorted(set(utt2spk.values())):
            w(spk, cmvn_stats(np.concatenate([x for u, x in feats.items() if utt2spk[u] == spk])))
    (data / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in sorted(utt2spk.items())))
    cfg = load_config(None, ["model.num_layers=2", "model.cell_dim=8", "model.proj_dim=4",
                             "chunk.left=5", "chunk.chunk=10", "chunk.delay=2"])
    ckpts = {}
    for i, name in enumerate(["base", "mt"]):
        torch.manual_seed(i)
        m = cfg["model"]
        model = AcousticModel(5, 7, m["num_layers"], m["cell_dim"], m["proj_dim"])
        exp = tmp_path / f"exp_{name}"
        exp.mkdir()
        torch.save({"config": cfg, "input_dim": 5, "num_pdfs": 7, "task_dims": {},
                    "model": model.state_dict()}, exp / "final.pt")
        ckpts[name] = exp
    return tmp_path, data, ckpts


def test_cli_end_to_end(tiny_setup, caplog):
    tmp, data, ckpts = tiny_setup
    out = tmp / "probe"
    rc = probe_layers.main(["--seeds", "0 1", "--epochs", "50", str(out), str(data),
                            f"base={ckpts['base']}", f"mt={ckpts['mt']}/final.pt"])
    assert rc == 0
    rows = [line.split("\t") for line in (out / "probe.tsv").read_text().splitlines()]
    assert rows[0] == ["system", "layer", "acc_mean", "acc_std", "n_test", "n_speakers", "n_models"]
    assert [(r[0], r[1]) for r in rows[1:]] == [("base", "1"), ("base", "2"), ("mt", "1"), ("mt", "2")]
    assert all(0 <= float(r[2]) <= 1 and r[4] == "8" and r[5] == "4" and r[6] == "1" for r in rows[1:])
    md = (out / "probe.md").read_text()
    assert "| system | layer 1 | layer 2 |" in md and "| base | " in md and "| mt | " in md
    assert "±" in md and "Chance: 25.0%" in md and "over probe seeds" in md

    # one system of two models (training seeds): the mean of the two models'
    # own results, the std over the two
    both = tmp / "probe_both"
    assert probe_layers.main(["--seeds", "0 1", "--epochs", "50", str(both), str(data),
                              f"pair={ckpts['base']},{ckpts['mt']}"]) == 0
    pair = [line.split("\t") for line in (both / "probe.tsv").read_text().splitlines()[1:]]
    for lay, r in zip((1, 2), pair):
        b, m = (float(x[2]) for x in rows[1:] if x[1] == str(lay))
        assert r[:2] == ["pair", str(lay)] and r[6] == "2"
        assert float(r[2]) == pytest.approx((b + m) / 2, abs=1e-4)
        assert float(r[3]) == pytest.approx(abs(b - m) / np.sqrt(2), abs=1e-4)
    assert "over the 2 models (training seeds)" in (both / "probe.md").read_text()
    assert (out / "probe.png").stat().st_size > 1000
    assert not list(out.glob("*.tmp*"))

    bad = tmp / "bad"
    with caplog.at_level(logging.ERROR):
        assert probe_layers.main(["--layers", "1 3", str(bad), str(data), f"base={ckpts['base']}"]) == 1
    assert "final.pt" in caplog.text and "'3' does not exist" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert probe_layers.main([str(bad), str(data), f"x={ckpts['base']},{tmp}/nowhere"]) == 1
    assert "nowhere: no such checkpoint" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert probe_layers.main([str(bad), str(data), f"x={ckpts['base']},"]) == 1
    assert "is not <name>=" in caplog.text
    caplog.clear()
    (data / "utt2spk").unlink()
    with caplog.at_level(logging.ERROR):
        assert probe_layers.main([str(bad), str(data), f"base={ckpts['base']}"]) == 1
    assert "utt2spk: no such file" in caplog.text
    assert not bad.exists()


def test_layer_representations_of_a_ctc_model_read_whole_utterances():
    """A CTC model (conv front end with time subsampling 2, then a BiLSTM) is
    read whole: each layer gives ceil(T / 2) frames, equal to the trunk's own
    output for that utterance alone, and the input (layer 0) is returned as is."""
    from mtlasr.nnet.build import build_model

    cfg = load_config(None, ["model.encoder=conv_blstm", "model.criterion=ctc", "model.num_layers=1",
                             "model.cell_dim=8", "model.conv_channels=[4]", "model.conv_dim=8",
                             "model.subsampling=2"])
    torch.manual_seed(0)
    model = build_model(cfg, 6, 5)
    feats, _ = synthetic(num_spk=2, per_spk=2)
    reps = layer_representations(model, cfg, feats, [0, 1, 2])
    for utt, x in feats.items():
        t = x.shape[0]
        assert np.array_equal(reps[0][utt], x)
        with torch.no_grad():
            model.eval()
            want = model.trunk(torch.from_numpy(x)[None], upto=2)
        for lay in (1, 2):
            assert reps[lay][utt].shape == ((t + 1) // 2, model.trunk.output_dims[lay - 1])
            np.testing.assert_allclose(reps[lay][utt], want[lay - 1][0].numpy(), rtol=1e-5, atol=1e-6)
