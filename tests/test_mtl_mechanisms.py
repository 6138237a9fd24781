"""Mechanisms of multi-task and adversarial training: gradient reversal,
dynamic weighting, pooling, weight schedules, label targets."""

import math

import numpy as np
import pytest
import torch

from mtlasr.nnet.model import AcousticModel, grad_reverse, pool
from mtlasr.nnet.tasks import ce_loss, dynamic_weights, ramp, step_lambdas, task_spec, task_weights
from mtlasr.nnet.targets import load_targets


def numeric_grad(f, x, eps=1e-6):
    g = torch.zeros_like(x)
    flat = x.view(-1)
    for i in range(flat.numel()):
        old = flat[i].item()
        flat[i] = old + eps
        up = f(x).item()
        flat[i] = old - eps
        down = f(x).item()
        flat[i] = old
        g.view(-1)[i] = (up - down) / (2 * eps)
    return g


@pytest.mark.parametrize("lam", [0.0, 0.3, 2.0])
def test_gradient_reversal_identity_forward_negated_scaled_backward(lam):
    torch.manual_seed(0)
    w = torch.randn(4, 3, dtype=torch.float64)
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)

    def head(z):  # any differentiable function after the layer
        return torch.tanh(z @ w).pow(2).sum()

    y = grad_reverse(x, lam)
    assert torch.equal(y, x)
    head(y).backward()
    num = numeric_grad(head, x.detach().clone())
    assert torch.allclose(x.grad, -lam * num, atol=1e-7)


def test_reversal_in_a_head_reverses_only_the_shared_layers():
    torch.manual_seed(0)
    m = AcousticModel(3, 4, num_layers=1, cell_dim=6, proj_dim=0, aux={"spk": (1, [5], 2, "none", 1.0, True)}).double()
    m.heads["spk"].grl_scale = 0.5
    x = torch.randn(2, 7, 3, dtype=torch.float64)
    m(x, heads=["spk"])["spk"].sum().backward()
    g_rev = [p.grad.clone() for p in m.trunk.parameters()]
    h_rev = [p.grad.clone() for p in m.heads["spk"].parameters()]
    m.zero_grad()
    m.heads["spk"].grl = False
    m(x, heads=["spk"])["spk"].sum().backward()
    for a, b in zip(g_rev, m.trunk.parameters()):
        assert torch.allclose(a, -0.5 * b.grad)
    for a, b in zip(h_rev, m.heads["spk"].parameters()):
        assert torch.allclose(a, b.grad)  # the head itself learns normally


def test_dynamic_weighting_equalises_and_is_not_differentiated():
    a = torch.tensor(3.0, requires_grad=True)
    b = torch.tensor(2.0, requires_grad=True)
    losses = {"main": a ** 2, "spk": 5 * b}  # 9 and 10
    w = dynamic_weights(losses)
    assert w["main"] == 1.0 and w["spk"] == pytest.approx(0.9)
    weighted = [w[k] * losses[k].item() for k in losses]
    assert weighted[0] == pytest.approx(weighted[1])
    assert all(isinstance(v, float) for v in w.values())
    total = sum(w[k] * losses[k] for k in losses)
    total.backward()
    # the weights act as constants: d/da = 1 * 2a, d/db = 0.9 * 5
    assert a.grad.item() == pytest.approx(6.0) and b.grad.item() == pytest.approx(4.5)
    tasks = {"spk": task_spec("spk", {"targets": "utt_label", "source": "x", "loss": "ce",
                                      "schedule": "dynamic"})}
    weights, scales = task_weights(tasks, losses, step_lambdas(tasks, 0.5))
    assert weights == w and scales == {}


def test_lse_pooling_limits():
    torch.manual_seed(0)
    h = torch.randn(3, 6, 4, dtype=torch.float64)
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[1, 4:] = False
    mean = pool(h, mask, "mean")
    mx = pool(h, mask, "max")
    assert torch.allclose(mean[1], h[1, :4].mean(0)) and torch.allclose(mx[1], h[1, :4].amax(0))
    assert torch.allclose(pool(h, mask, "lse", tau=1e-6), mean, atol=1e-5)
    assert torch.allclose(pool(h, mask, "lse", tau=1e5), mx, atol=1e-4)
    mid = pool(h, mask, "lse", tau=1.0)
    assert torch.all(mid >= mean - 1e-12) and torch.all(mid <= mx + 1e-12)


def test_ramp_and_schedules():
    assert ramp(0.0, 10.0) == 0.0 and ramp(1.0, 10.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert 0 < ramp(0.1, 10.0) < ramp(0.5, 10.0) < 1
    tasks = {
        "iv": task_spec("iv", {"targets": "utt_vector", "source": "x", "weight": 0.1}),
        "adv": task_spec("adv", {"targets": "utt_label", "source": "x", "loss": "ce", "grl": True,
                                 "schedule": "ramp", "gamma": 10, "weight": 0.2}),
        "mt": task_spec("mt", {"targets": "utt_label", "source": "x", "loss": "ce", "schedule": "ramp",
                               "weight": 0.5}),
    }
    losses = {k: torch.tensor(1.0) for k in ("main", "iv", "adv", "mt")}
    w, s = task_weights(tasks, losses, step_lambdas(tasks, 0.3))
    assert w["main"] == 1.0 and w["iv"] == pytest.approx(0.1)
    assert w["adv"] == 1.0 and s["adv"] == pytest.approx(0.2 * ramp(0.3, 10))
    assert w["mt"] == pytest.approx(0.5 * ramp(0.3, 10)) and "mt" not in s
    with pytest.raises(ValueError, match="dynamic weighting"):
        task_spec("x", {"targets": "utt_label", "source": "x", "loss": "ce", "grl": True, "schedule": "dynamic"})
    with pytest.raises(ValueError, match="need loss ce"):
        task_spec("x", {"targets": "utt_label", "source": "x"})


def test_utterance_labels_and_unknown_classes(tmp_path):
    d = tmp_path / "train"
    d.mkdir()
    (d / "utt2spk").write_text("a-1 a\na-2 a\nb-1 b\n")
    spec = task_spec("spk", {"targets": "utt_label", "source": "{data}/utt2spk", "loss": "ce"})
    t = load_targets("spk", spec, str(d), ["a-1", "a-2", "b-1"])
    assert t.classes == ["a", "b"] and t.dim == 2 and t.chunk("b-1", 0, 3, 9).tolist() == [1, 1, 1]
    v = tmp_path / "dev"
    v.mkdir()
    (v / "utt2spk").write_text("a-3 a\nc-1 c\n")
    tv = load_targets("spk", spec, str(v), ["a-3", "c-1"], classes=t.classes)
    assert int(tv.values["a-3"]) == 0 and int(tv.values["c-1"]) == -100
    (d / "utt2spk").write_text("a-1 a\n")
    with pytest.raises(ValueError, match="at least 2"):
        load_targets("spk", spec, str(d), ["a-1"])
    with pytest.raises(ValueError, match="no label in .* e.g. b-1"):
        load_targets("spk", spec, str(d), ["a-1", "b-1"])


def test_ce_frame_and_pooled():
    logits = torch.log(torch.tensor([[[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]]]))
    target = torch.tensor([[0, 0, 1]])
    mask = torch.tensor([[True, True, False]])
    assert ce_loss(logits, target, mask).item() == pytest.approx(-(math.log(0.5) + math.log(0.9)) / 2)
    pooled = torch.log(torch.tensor([[0.25, 0.75], [0.6, 0.4]]))
    assert ce_loss(pooled, torch.tensor([[1, 1], [0, 0]]), torch.tensor([[True, True], [False, False]])).item() \
        == pytest.approx(-math.log(0.75))
    all_unknown = ce_loss(logits, torch.full((1, 3), -100), mask)
    assert all_unknown.item() == 0.0 and np.isfinite(all_unknown.item())


def test_frame_labels_from_alignment_phones(tmp_path):
    (tmp_path / "phones.txt").write_text("<eps> 0\naa 1\nb 2\nsil 3\n#0 4\n")
    phones = {"u1": np.array([3, 3, 1, 1, 2, 3])}
    mono = task_spec("mono", {"targets": "frame_label", "source": str(tmp_path / "phones.txt"), "loss": "ce"})
    t = load_targets("mono", mono, "data/x", ["u1"], frame_phones=phones)
    assert t.classes == ["aa", "b", "sil"] and t.values["u1"].tolist() == [2, 2, 0, 0, 1, 2]
    assert t.chunk("u1", 4, 4, 6).tolist() == [1, 2, 2, 2]  # past the end repeats the last frame
    (tmp_path / "broad.map").write_text("# comment\naa vowel\nb stop\nsil silence\n")
    broad = dict(mono, map=str(tmp_path / "broad.map"))
    t = load_targets("broad", broad, "data/x", ["u1"], frame_phones=phones)
    assert t.classes == ["silence", "stop", "vowel"] and t.values["u1"].tolist() == [0, 0, 2, 2, 1, 0]
    with pytest.raises(ValueError, match="has 6 frame labels for 7 frames"):
        t.check("u1", 7)
    (tmp_path / "broad.map").write_text("aa vowel\nsil silence\n")
    with pytest.raises(ValueError, match="utterance u1: phone b has no class"):
        load_targets("broad", broad, "data/x", ["u1"], frame_phones=phones)
    with pytest.raises(ValueError, match="pooled"):
        task_spec("m", {"targets": "frame_label", "source": "p", "loss": "ce", "pooling": "mean"})
