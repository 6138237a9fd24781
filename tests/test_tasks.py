"""Auxiliary tasks: declarations, targets, heads that fork, the MTL loss."""

import json

import kaldiio
import numpy as np
import pytest
import torch

from mtlasr.nnet.config import load_config
from mtlasr.nnet.data import ChunkDataset, ChunkSpec
from mtlasr.nnet.model import AcousticModel
from mtlasr.nnet.model import CosineLinear, Head
from mtlasr.nnet.targets import TaskTargets, load_targets, source_path
from mtlasr.nnet.tasks import aam_logits, aam_loss, mse_loss, resolve_fork, task_loss, task_spec
from mtlasr.nnet.train import Trainer
from mtlasr.nnet.build import load_for_inference

IVEC = {"targets": "utt_vector", "source": "exp/ivectors_{set}/ivectors.scp", "weight": 1e-4}


def write_yaml(path, text):
    path.write_text(text)
    return str(path)


# ---------------------------------------------------------------- declarations
def test_task_config_files_and_overrides_merge(tmp_path):
    base = write_yaml(tmp_path / "m.yaml", "model:\n  num_layers: 2\n")
    task = write_yaml(tmp_path / "t.yaml",
                      "tasks:\n  ivector:\n    targets: utt_vector\n    source: x/{set}.scp\n    weight: 1.0e-4\n")
    cfg = load_config([base, task], ["tasks.ivector.weight=5e-4", "tasks.ivector.fork=mid"])
    t = cfg["tasks"]["ivector"]
    assert cfg["model"]["num_layers"] == 2
    assert t["weight"] == pytest.approx(5e-4)  # "5e-4" is a YAML string; it is converted
    assert t["fork"] == "mid" and t["loss"] == "mse" and t["hidden"] == []
    assert load_config([base, task], ["tasks.ivector=null"])["tasks"] == {}
    # a task declared only on the command line
    cfg = load_config(base, ["tasks.v.targets=frame_vector", "tasks.v.source=a.scp", "tasks.v.period=10"])
    assert cfg["tasks"]["v"]["period"] == 10


@pytest.mark.parametrize("override,msg", [
    ("tasks.ivector.wieght=1", "unknown field 'wieght'"),
    ("tasks.ivector.targets=speaker", "is not one of"),
    ("tasks.ivector.loss=ctc", "is not one of"),
    ("tasks.ivector.weight=-1", "must be finite and >= 0"),
    ("tasks.ivector.hidden=[0]", "hidden"),
    ("tasks.main.targets=utt_vector", "'main'"),
])
def test_bad_task_declaration_is_named(tmp_path, override, msg):
    task = write_yaml(tmp_path / "t.yaml", "tasks:\n  ivector:\n    targets: utt_vector\n    source: a.scp\n")
    with pytest.raises((KeyError, ValueError), match=msg):
        load_config(task, [override])


def test_task_without_source_is_refused():
    with pytest.raises(ValueError, match="source"):
        task_spec("ivector", {"targets": "utt_vector"})


def test_fork_names_and_bad_fork():
    assert [resolve_fork(f, 3) for f in ("first", "mid", "last", 2)] == [1, 2, 3, 2]
    assert resolve_fork("mid", 4) == 2 and resolve_fork("mid", 1) == 1
    for bad in (0, 4, "middle", True):
        with pytest.raises(ValueError, match="does not exist"):
            resolve_fork(bad, 3, "ivector")


def test_source_template():
    assert source_path("exp/ivectors_{set}/ivectors.scp", "data/dev/") == source_path(
        "exp/ivectors_dev/ivectors.scp", "x")
    assert str(source_path("{data}/utt2spk", "data/train")) == "data/train/utt2spk"


# ---------------------------------------------------------------- targets
def write_vectors(path, items):
    with kaldiio.WriteHelper(f"ark,scp:{path}.ark,{path}.scp") as w:
        for k, v in items.items():
            w(k, np.asarray(v, dtype=np.float32))
    return f"{path}.scp"


def test_utt_and_frame_vector_targets(tmp_path):
    d = tmp_path / "exp" / "ivectors_train"
    d.mkdir(parents=True)
    write_vectors(d / "ivectors", {"u1": [1, 2], "u2": [3, 4]})
    online = {"u1": np.arange(6, dtype=np.float32).reshape(3, 2)}  # 25 frames, period 10 -> 3 rows
    write_vectors(d / "ivector_online", online)
    spec = task_spec("iv", {"targets": "utt_vector", "source": str(tmp_path / "exp/ivectors_{set}/ivectors.scp")})
    t = load_targets("iv", spec, "data/train", ["u1", "u2"])
    assert t.dim == 2 and t.chunk("u2", 0, 4, 10).tolist() == [[3, 4]] * 4
    spec = task_spec("on", {"targets": "frame_vector", "period": 10,
                            "source": str(tmp_path / "exp/ivectors_{set}/ivector_online.scp")})
    t = load_targets("on", spec, "data/train", ["u1"])
    t.check("u1", 25)
    rows = t.chunk("u1", 15, 12, 25)  # frames 15..26, past the end repeat frame 24
    assert rows[:, 0].tolist() == [2] * 5 + [4] * 5 + [4] * 2
    with pytest.raises(ValueError, match="u1 has 3 target rows"):
        t.check("u1", 31)
    with pytest.raises(ValueError, match="no target for utterance u9"):
        t.check("u9", 10)


def test_missing_target_file_and_utterance_are_named(tmp_path):
    spec = task_spec("iv", {"targets": "utt_vector", "source": str(tmp_path / "nope_{set}.scp")})
    with pytest.raises(FileNotFoundError, match=r"task iv: target file .*nope_dev.scp"):
        load_targets("iv", spec, "data/dev", ["a"])
    scp = write_vectors(tmp_path / "v", {"a": [1.0]})
    spec = task_spec("iv", {"targets": "utt_vector", "source": scp})
    with pytest.raises(ValueError, match="1 utterances have no target .* e.g. b"):
        load_targets("iv", spec, "data/dev", ["a", "b"])
    scp = write_vectors(tmp_path / "w", {"a": [np.nan]})
    with pytest.raises(ValueError, match="utterance a: target has NaN"):
        load_targets("iv", task_spec("iv", {"targets": "utt_vector", "source": scp}), "d", ["a"])


def test_mse_is_half_squared_error_per_frame():
    pred = torch.tensor([[[1.0, 2.0], [0.0, 0.0], [5.0, 5.0]]])
    tgt = torch.tensor([[[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]])
    mask = torch.tensor([[True, True, False]])
    # frames 1 and 2 count: 0.5 * (1 + 4) and 0.5 * (1 + 1)
    assert mse_loss(pred, tgt, mask).item() == pytest.approx((2.5 + 1.0) / 2)


def test_aam_softmax_against_a_hand_computation():
    """ArcFace eq. 3 with seed 003's s = 30, m = 0.2, worked by hand."""
    import math

    cos = torch.tensor([[0.8, 0.6, -0.2], [0.1, -0.99, 0.3]])
    target = torch.tensor([[0, 0], [1, 1]])  # per frame; the pooled loss takes the first counted frame
    mask = torch.ones(2, 2, dtype=torch.bool)
    s, m = 30.0, 0.2
    # row 0: theta_y = acos(0.8); the target logit is s cos(theta_y + m)
    t0 = s * math.cos(math.acos(0.8) + m)
    row0 = [t0, s * 0.6, s * -0.2]
    # row 1: theta_y = acos(-0.99) = 3.0 > pi - m: the fallback s (cos - m sin m)
    t1 = s * (-0.99 - m * math.sin(m))
    row1 = [s * 0.1, t1, s * 0.3]
    logits = aam_logits(cos, target[:, 0], m, s)
    assert torch.allclose(logits, torch.tensor([row0, row1]), atol=1e-4)

    def ce(row, y):
        return -row[y] + math.log(sum(math.exp(v) for v in row))
    want = (ce(row0, 0) + ce(row1, 1)) / 2
    assert aam_loss(cos, target, mask, m, s).item() == pytest.approx(want, rel=1e-5)
    spec = task_spec("spk", {"targets": "utt_label", "source": "{data}/utt2spk", "loss": "aam", "pooling": "mean"})
    assert (spec["margin"], spec["scale"]) == (0.2, 30.0)
    assert task_loss(spec, cos, target, mask).item() == pytest.approx(want, rel=1e-5)
    # no margin: a scaled softmax cross-entropy; a row that does not count is ignored
    plain = torch.nn.functional.cross_entropy(s * cos[:1], torch.tensor([0]))
    assert aam_loss(cos, target, torch.tensor([[True, True], [False, False]]), 0.0, s).item() == \
        pytest.approx(plain.item(), rel=1e-6)
    assert aam_loss(cos, target, torch.zeros(2, 2, dtype=torch.bool)).item() == 0.0
    # the margin makes the loss larger than without it, and it has gradients
    c = cos.clone().requires_grad_(True)
    loss = aam_loss(c, target, mask, m, s)
    loss.backward()
    assert loss.item() > aam_loss(cos, target, mask, 0.0, s).item() and torch.isfinite(c.grad).all()
    with pytest.raises(ValueError, match="pooled head"):
        aam_loss(cos[:, None], target, mask)


def test_aam_declarations_and_cosine_head():
    base = {"targets": "utt_label", "source": "{data}/utt2spk", "loss": "aam"}
    with pytest.raises(ValueError, match="aam needs utt_label targets and a pooled head"):
        task_spec("spk", base)
    with pytest.raises(ValueError, match="margin: must be in"):
        task_spec("spk", {**base, "pooling": "mean", "margin": 2.0})
    with pytest.raises(ValueError, match="scale: must be > 0"):
        task_spec("spk", {**base, "pooling": "mean", "scale": 0})
    with pytest.raises(ValueError, match="need loss mse"):
        task_spec("iv", {**IVEC, "loss": "aam"})
    torch.manual_seed(0)
    head = Head(6, [4], 3, pooling="mean", cosine=True)
    assert isinstance(head.out, CosineLinear)
    x = torch.randn(2, 5, 6)
    out = head(x)
    assert out.shape == (2, 3) and float(out.abs().max()) <= 1.0 + 1e-6
    e = head.embed(x)
    assert e.shape == (2, 4)
    w = torch.nn.functional.normalize(head.out.weight, dim=-1)
    assert torch.allclose(out, torch.nn.functional.normalize(e, dim=-1) @ w.T, atol=1e-6)


# ---------------------------------------------------------------- model
def test_heads_fork_where_configured():
    torch.manual_seed(0)
    m = AcousticModel(5, 7, num_layers=3, cell_dim=8, proj_dim=4,
                      aux={"a": (1, [], 3), "b": (2, [6], 2)})
    x = torch.randn(2, 9, 5)
    out = m(x)
    assert out["main"].shape == (2, 9, 7) and out["a"].shape == (2, 9, 3) and out["b"].shape == (2, 9, 2)
    out["a"].sum().backward()
    grads = [all(p.grad is None or float(p.grad.abs().sum()) == 0 for p in layer.parameters())
             for layer in m.trunk.layers]
    assert grads == [False, True, True]  # head a reads layer 1 only
    m.zero_grad()
    m(x)["b"].sum().backward()
    grads = [all(p.grad is None or float(p.grad.abs().sum()) == 0 for p in layer.parameters())
             for layer in m.trunk.layers]
    assert grads == [False, False, True]
    with pytest.raises(ValueError, match="fork layer 4"):
        AcousticModel(5, 7, num_layers=3, cell_dim=8, proj_dim=4, aux={"a": (4, [], 3)})


# ---------------------------------------------------------------- training
def toy_data(seed=0, n=6, dim=4, pdfs=5, vdim=3):
    rng = np.random.default_rng(seed)
    feats, labels, vecs = {}, {}, {}
    for i in range(n):
        t = int(rng.integers(30, 60))
        offset = rng.standard_normal(dim)  # an utterance "speaker" shift, which the vector encodes
        feats[f"u{i}"] = (rng.standard_normal((t, dim)) * 0.3 + offset).astype(np.float32)
        labels[f"u{i}"] = rng.integers(0, pdfs, t)
        vecs[f"u{i}"] = offset[:vdim].astype(np.float32)
    return feats, labels, vecs


def toy_cfg(tmp_path, overrides=()):
    base = write_yaml(tmp_path / "m.yaml", "model: {num_layers: 2, cell_dim: 8, proj_dim: 4}\n"
                      "chunk: {chunk: 10, left: 5, delay: 2}\n"
                      "train: {minibatch: 4, max_epochs: 2, num_threads: 1, lr_initial: 0.01, lr_final: 0.005}\n")
    return load_config(base, overrides)


def train_toy(tmp_path, name, cfg, with_targets):
    feats, labels, vecs = toy_data()
    spec = ChunkSpec(**cfg["chunk"])
    aux = {}
    if with_targets:
        aux["iv"] = TaskTargets("iv", "utt_vector", 3, 1, "toy", vecs)
    train = ChunkDataset(feats, labels, spec, aux)
    exp = tmp_path / name
    exp.mkdir()
    tr = Trainer(cfg, train, train, 5, exp, torch.device("cpu"))
    tr.run()
    return tr, json.loads((exp / "history.json").read_text())


def test_zero_lambda_equals_single_task(tmp_path):
    """lambda = 0 leaves the shared layers' training exactly as without the task."""
    stl, h0 = train_toy(tmp_path, "stl", toy_cfg(tmp_path), False)
    mtl, h1 = train_toy(tmp_path, "mtl0", toy_cfg(tmp_path, ["tasks.iv.targets=utt_vector", "tasks.iv.source=x",
                                                             "tasks.iv.weight=0"]), True)
    assert [r["train_loss"] for r in h0] == [r["train_loss"] for r in h1]
    assert [r["valid_loss"] for r in h0] == [r["valid_loss"] for r in h1]
    assert "train_iv_loss" in h1[0] and "valid_iv_loss" in h1[0]
    for k, v in stl.model.state_dict().items():
        assert torch.equal(v, mtl.model.state_dict()[k]), k


def test_main_weight_zero_trains_the_auxiliary_task_alone(tmp_path):
    """train.main_weight 0 (seed 003's single-task speaker baseline; eq. 4's
    lambda_s): the main head never moves, the shared layers and the
    auxiliary head do."""
    from mtlasr.nnet.tasks import task_weights

    task = ["tasks.iv.targets=utt_vector", "tasks.iv.source=x", "tasks.iv.weight=0.12"]
    loss = {"main": torch.tensor(2.0), "iv": torch.tensor(4.0)}
    cfg = toy_cfg(tmp_path, task + ["train.main_weight=0.88"])
    assert task_weights(cfg["tasks"], loss, {"iv": 0.12}, cfg["train"]["main_weight"])[0] == {"main": 0.88, "iv": 0.12}
    tr, _ = train_toy(tmp_path, "aux_only", toy_cfg(tmp_path, task + ["train.main_weight=0"]), True)
    init = torch.load(tmp_path / "aux_only" / "epoch-1.pt", weights_only=False)["model"]
    torch.manual_seed(0)
    first = Trainer(toy_cfg(tmp_path, task + ["train.main_weight=0"]), tr.train, tr.valid, tr.model.heads["main"].out_features,
                    tmp_path / "fresh", torch.device("cpu")).model.state_dict()
    end = tr.model.state_dict()
    assert all(torch.equal(first[k], end[k]) for k in end if k.startswith("heads.main."))
    assert not all(torch.equal(first[k], end[k]) for k in end if k.startswith("trunk."))
    assert not all(torch.equal(first[k], init[k]) for k in end if k.startswith("heads.iv."))
    # final.pt is the last epoch: the main task's validation loss says nothing of the auxiliary head
    assert tr.best_record()["epoch"] == tr.history[-1]["epoch"] > 1
    final = torch.load(tmp_path / "aux_only" / "final.pt", weights_only=False)["model"]
    assert all(torch.equal(final[k], end[k]) for k in end)
    with pytest.raises(ValueError, match="dynamic weighting .* sets the main task's weight"):
        toy_cfg(tmp_path, task + ["tasks.iv.schedule=dynamic", "train.main_weight=0.5"])
    with pytest.raises(ValueError, match="main_weight: must be a number >= 0"):
        toy_cfg(tmp_path, ["train.main_weight=-1"])


def test_positive_lambda_changes_training_and_learns_the_targets(tmp_path):
    _, h0 = train_toy(tmp_path, "stl", toy_cfg(tmp_path), False)
    cfg = toy_cfg(tmp_path, ["tasks.iv.targets=utt_vector", "tasks.iv.source=x", "tasks.iv.weight=1.0",
                             "train.max_epochs=6"])
    tr, h1 = train_toy(tmp_path, "mtl", cfg, True)
    assert h1[0]["train_loss"] != h0[0]["train_loss"]
    assert h1[-1]["train_iv_loss"] < 0.5 * h1[0]["train_iv_loss"]
    # decoding drops the auxiliary head; the main output is unchanged
    model, _ = load_for_inference(tmp_path / "mtl" / "final.pt")
    assert list(model.heads) == ["main"]
    st = torch.load(tmp_path / "mtl" / "final.pt", weights_only=False)
    assert st["task_dims"] == {"iv": 3}
    full = AcousticModel(4, 5, 2, 8, 4, aux={"iv": (2, [], 3)})
    full.load_state_dict(st["model"])
    full.eval()
    x = torch.randn(1, 17, 4)
    with torch.no_grad():
        assert torch.equal(model(x)["main"], full(x)["main"])


def test_missing_targets_for_a_declared_task(tmp_path):
    feats, labels, _ = toy_data()
    cfg = toy_cfg(tmp_path, ["tasks.iv.targets=utt_vector", "tasks.iv.source=x"])
    train = ChunkDataset(feats, labels, ChunkSpec(**cfg["chunk"]))
    with pytest.raises(ValueError, match="tasks iv: no targets"):
        Trainer(cfg, train, None, 5, tmp_path, torch.device("cpu"))
    partial = TaskTargets("iv", "utt_vector", 3, 1, "toy.scp", {"u0": np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match="task iv: no target for utterance u1 in toy.scp"):
        ChunkDataset(feats, labels, ChunkSpec(**cfg["chunk"]), {"iv": partial})


def test_speaker_vector_targets_follow_utt2spk(tmp_path):
    data = tmp_path / "data" / "dev"
    data.mkdir(parents=True)
    (data / "utt2spk").write_text("a-1 a\na-2 a\nb-1 b\n")
    scp = write_vectors(tmp_path / "spk", {"a": [1, 1], "b": [2, 2]})
    spec = task_spec("s", {"targets": "spk_vector", "source": scp})
    t = load_targets("s", spec, str(data), ["a-1", "a-2", "b-1"])
    assert t.chunk("a-2", 0, 2, 5).tolist() == [[1, 1]] * 2 and t.chunk("b-1", 0, 1, 5).tolist() == [[2, 2]]
    with pytest.raises(ValueError, match="utterance c-1 has no speaker"):
        load_targets("s", spec, str(data), ["c-1"])
    (data / "utt2spk").write_text("c-1 c\n")
    with pytest.raises(ValueError, match=r"e.g. c-1 \(speaker c\)"):
        load_targets("s", spec, str(data), ["c-1"])


def test_staged_training_seed002(tmp_path):
    """main stage: the shared layers train as without the task; aux stage:
    only the auxiliary head moves; joint: everything."""
    task = ["tasks.iv.targets=utt_vector", "tasks.iv.source=x", "tasks.iv.weight=1.0"]
    _, h0 = train_toy(tmp_path, "stl", toy_cfg(tmp_path, ["train.max_epochs=1"]), False)
    cfg = toy_cfg(tmp_path, task + ["train.max_epochs=3", "train.stages=[[main, 1], [aux, 1], [joint, 1]]"])
    _, h = train_toy(tmp_path, "staged", cfg, True)
    assert [r["stage"] for r in h] == ["main", "aux", "joint"]
    ep = [torch.load(tmp_path / "staged" / f"epoch-{i}.pt", weights_only=False)["model"] for i in (1, 2, 3)]
    stl = torch.load(tmp_path / "stl" / "epoch-1.pt", weights_only=False)["model"]
    shared = [k for k in ep[0] if not k.startswith("heads.iv.")]
    head = [k for k in ep[0] if k.startswith("heads.iv.")]
    assert h[0]["train_loss"] == h0[0]["train_loss"]
    assert all(torch.equal(ep[0][k], stl[k]) for k in shared)
    assert all(torch.equal(ep[0][k], ep[1][k]) for k in shared)
    assert not all(torch.equal(ep[0][k], ep[1][k]) for k in head)
    assert not all(torch.equal(ep[1][k], ep[2][k]) for k in shared)
    with pytest.raises(ValueError, match="the stages have 2 epochs"):
        toy_cfg(tmp_path, task + ["train.max_epochs=3", "train.stages=[[main, 1], [joint, 1]]"])
    with pytest.raises(ValueError, match="is not \\[main|aux|joint"):
        toy_cfg(tmp_path, task + ["train.max_epochs=2", "train.stages=[[both, 2]]"])


def test_every_shipped_config_loads():
    """Every recipe's model and task configs load; a file declaring one task
    names it after itself (run.sh's --aux-lambda sets tasks.<file name>.weight)."""
    from pathlib import Path

    recipes = sorted((Path(__file__).resolve().parent.parent / "egs").glob("*/s5/conf"))
    assert recipes
    for root in recipes:
        # LSTM-HMM, CTC and wav2vec2 CTC models (not conf/w2v2_pretrain.yaml etc.: network configs)
        models = sorted([*root.glob("lstm*.yaml"), *root.glob("ctc*.yaml"), *root.glob("w2v2_ctc*.yaml")])
        tasks = sorted((root / "tasks").rglob("*.yaml"))  # tasks/<variant>/<task>.yaml too
        for m in models:
            load_config(m)
        for t in tasks:
            cfg = load_config([models[0], t])
            assert cfg["tasks"] and (len(cfg["tasks"]) > 1 or t.stem in cfg["tasks"]), t
            for name, spec in cfg["tasks"].items():
                resolve_fork(spec["fork"], cfg["model"]["num_layers"], name)
    names = [r.parent.parent.name for r in recipes]
    assert "multiling_espeak" in names and "wsj" in names and "speech_speaker" in names
    timit = recipes[names.index("timit")]
    assert len(list(timit.glob("lstm*.yaml"))) == 3 and len(list((timit / "tasks").glob("*.yaml"))) >= 7


def test_step_flops_counts_the_heads_and_touches_nothing(tmp_path):
    """One training step's FLOPs (train_nnet --count-flops): a head adds its
    matrix products, the count matches the LSTM's gate and projection
    products, and the model's gradients and the torch RNG are as before."""
    from mtlasr.nnet.build import build_model
    from mtlasr.nnet.evaluate import step_flops

    feats, labels, vecs = toy_data()
    plain = toy_cfg(tmp_path)
    with_iv = toy_cfg(tmp_path, ["tasks.iv.targets=utt_vector", "tasks.iv.source=x", "tasks.iv.weight=1.0",
                                 "tasks.iv.hidden=[16]"])
    spec = ChunkSpec(**plain["chunk"])
    counts = {}
    for name, cfg, aux in (("plain", plain, {}),
                           ("iv", with_iv, {"iv": TaskTargets("iv", "utt_vector", 3, 1, "toy", vecs)})):
        data = ChunkDataset(feats, labels, spec, aux)
        torch.manual_seed(0)
        model = build_model(cfg, 4, 5, {n: 3 for n in aux})
        rng = torch.get_rng_state()
        counts[name] = step_flops(model, data, cfg["train"]["minibatch"], torch.device("cpu"), cfg["tasks"])
        assert torch.equal(torch.get_rng_state(), rng)
        assert all(p.grad is None for p in model.parameters())
    (f0, n0), (f1, n1) = counts["plain"], counts["iv"]
    assert n0 == n1 > 0 and f1 > f0
    # forward products of 2 LSTMP layers (cells 8, projection 4, input 4) over 4 chunks x 17 frames,
    # 2 FLOPs per multiply-add; a step (forward and backward) is about 3 times that
    frames = 4 * spec.width
    lstm = 2 * frames * (4 * 8 * (4 + 4) + 8 * 4) + 2 * frames * (4 * 8 * (4 + 4) + 8 * 4)
    assert 2.5 * lstm < f0 < 4 * lstm
