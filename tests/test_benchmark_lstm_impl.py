"""Tests of local/benchmark_lstm_impl.py: the hand-written
LSTMPs (autograd loop, hand-written backward) against
torch.nn.LSTM(proj_size), and the benchmark run end to end on tiny sizes
(0.2 s per variant, no torch.compile: its compilation alone takes about a
minute). A few seconds in all, on one torch thread.
"""

import importlib.util
import json
import sys

import pytest
import torch

from conftest import ROOT

SCRIPT = ROOT / "local" / "benchmark_lstm_impl.py"

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = ["--batch", "3", "--frames", "7", "--chunk", "3", "--input-dim", "5", "--layers", "2", "--cell", "8",
        "--proj", "4", "--num-pdfs", "6"]
UNCOMPILED = "torch_lstmp,onednn_lstm_linear,native_lstm_linear,loop_lstmp,jit_lstmp,bptt_lstmp"


def load_module():
    spec = importlib.util.spec_from_file_location("benchmark_lstm_impl", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


m = load_module()


@pytest.fixture
def thread_env(monkeypatch):
    """main() sets the thread variables of the environment: restored after."""
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(v, "1")


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("impl", ["lstmp_loop", "lstmp_bptt"])
def test_lstmp_matches_torch(impl, dtype, tol):
    """Outputs and the gradients of the input and all five weights equal
    nn.LSTM(proj_size)'s for the same weights."""
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(5, 8, proj_size=4, batch_first=True).to(dtype)
    x = torch.randn(3, 7, 5, dtype=dtype, requires_grad=True)
    weight = torch.randn(3, 7, 4, dtype=dtype)
    ref, _ = lstm(x)
    (ref * weight).sum().backward()
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
    ref_grads = [x.grad.clone()] + [getattr(lstm, n + "_l0").grad for n in names]
    params = [getattr(lstm, n + "_l0").detach().clone().requires_grad_(True) for n in names]
    x2 = x.detach().clone().requires_grad_(True)
    out = getattr(m, impl)(x2, *params)
    assert out.shape == (3, 7, 4)
    assert torch.allclose(out, ref, atol=tol, rtol=0)
    (out * weight).sum().backward()
    for got, want in zip([x2.grad] + [p.grad for p in params], ref_grads):
        assert torch.allclose(got, want, atol=tol, rtol=0)


def test_bptt_gradcheck():
    """LstmpFunction's backward against finite differences (float64)."""
    torch.manual_seed(1)
    h, p, d = 3, 2, 2
    args = [torch.randn(*s, dtype=torch.float64, requires_grad=True)
            for s in ((2, 4, d), (4 * h, d), (4 * h, p), (4 * h,), (4 * h,), (p, h))]
    assert torch.autograd.gradcheck(m.lstmp_bptt, args)


def test_parse_variants():
    assert m.parse_variants(" torch_lstmp, bptt_lstmp ") == ["torch_lstmp", "bptt_lstmp"]
    with pytest.raises(ValueError, match="nope"):
        m.parse_variants("torch_lstmp,nope")


def test_check(capsys, thread_env):
    """--check: the same-model variants agree with torch_lstmp; oneDNN's LSTM
    (mkldnn_rnn_layer, forward and backward) runs for onednn_lstm_linear only."""
    assert m.main(TINY + ["--check", "--variants", UNCOMPILED]) == 0
    out = capsys.readouterr().out
    for v in ("loop_lstmp", "jit_lstmp", "bptt_lstmp"):
        assert f"{v}: max |output diff|" in out
    lines = {line.split(":")[0]: line for line in out.splitlines()}
    if torch.backends.mkldnn.is_available():
        assert "mkldnn_rnn_layer_backward" in lines["onednn_lstm_linear"]
    assert "mkldnn" not in lines["native_lstm_linear"] and "mkldnn" not in lines["torch_lstmp"]


def test_benchmark_end_to_end(tmp_path, capsys, thread_env):
    """The timed run: a row per variant with figures, the baseline's ratio
    1, the same first-step loss for the same-model variants; --json."""
    out_json = tmp_path / "out.json"
    rc = m.main(TINY + ["--seconds", "0.2", "--repeats", "1", "--warmup", "1", "--variants", UNCOMPILED,
                        "--json", str(out_json)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "labels/s" in out and "failed" not in out
    rows = {r["variant"]: r for r in json.loads(out_json.read_text())["rows"]}
    assert list(rows) == UNCOMPILED.split(",")
    assert rows["torch_lstmp"]["ratio"] == pytest.approx(1.0)
    for v, r in rows.items():
        assert r["steps_per_s"] > 0 and r["same_model"] == m.SAME_MODEL[v]
        if r["same_model"]:
            assert r["params"] == rows["torch_lstmp"]["params"]
            assert r["loss0"] == pytest.approx(rows["torch_lstmp"]["loss0"], abs=1e-5)
    assert rows["onednn_lstm_linear"]["params"] > rows["torch_lstmp"]["params"]


def test_failed_variant_is_a_row(monkeypatch, capsys, thread_env):
    """A variant that cannot be built (e.g. torch.compile without a C++
    compiler) gets 'failed: <reason>' in the table; the others run."""
    build = m.build

    def broken(variant, args):
        if variant == "loop_lstmp":
            raise RuntimeError("no compiler\nmore text")
        return build(variant, args)

    monkeypatch.setattr(m, "build", broken)
    rc = m.main(TINY + ["--seconds", "0.05", "--repeats", "1", "--warmup", "1", "--variants", "torch_lstmp,loop_lstmp"])
    assert rc == 1
    out = capsys.readouterr().out
    assert "failed: RuntimeError: no compiler" in out and "more text" not in out
    assert any(line.startswith("torch_lstmp") and "1.00" in line for line in out.splitlines())
