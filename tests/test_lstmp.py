"""The LSTMP training pass with the hand-written backward
(mtlasr.nnet.lstmp, model.lstm_impl bptt): outputs, final state and the
gradients of the input, the initial state and all five weights equal
torch.nn.LSTM(proj_size)'s, and finite differences; the trunk uses it
only where it should (training on CPU with a projection) and trains the
same model as nn.LSTM to float rounding, state carry-over included.
"""

import pytest
import torch

from mtlasr.nnet.config import load_config
from mtlasr.nnet.lstmp import LstmpFunction, lstmp_layer
from mtlasr.nnet.model import LstmState, LstmTrunk

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
@pytest.mark.parametrize("initial", [False, True])
def test_layer_equals_torch_lstm(dtype, tol, initial):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(5, 8, proj_size=4, batch_first=True).to(dtype)
    x = torch.randn(3, 7, 5, dtype=dtype, requires_grad=True)
    hc = None
    if initial:
        hc = (torch.randn(1, 3, 4, dtype=dtype, requires_grad=True), torch.randn(1, 3, 8, dtype=dtype,
                                                                                  requires_grad=True))
    w = torch.randn(3, 7, 4, dtype=dtype)
    ref, (rh, rc) = lstm(x, hc) if initial else lstm(x)
    (ref * w).sum().backward()
    want = [x.grad] + [getattr(lstm, n + "_l0").grad for n in NAMES] + ([hc[0].grad, hc[1].grad] if initial else [])
    want = [g.clone() for g in want]
    lstm.zero_grad()
    x.grad = None
    if initial:
        hc[0].grad = hc[1].grad = None
    out, (h, c) = lstmp_layer(lstm, x, hc)
    assert out.shape == (3, 7, 4) and h.shape == (1, 3, 4) and c.shape == (1, 3, 8)
    torch.testing.assert_close(out, ref, atol=tol, rtol=0)
    torch.testing.assert_close(h, rh, atol=tol, rtol=0)
    torch.testing.assert_close(c, rc, atol=tol, rtol=0)
    assert not h.requires_grad and not c.requires_grad  # the final state is not differentiated
    (out * w).sum().backward()
    got = [x.grad] + [getattr(lstm, n + "_l0").grad for n in NAMES] + ([hc[0].grad, hc[1].grad] if initial else [])
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, atol=tol, rtol=0)


def test_gradcheck():
    torch.manual_seed(1)
    h, p, d, b = 3, 2, 2, 2
    args = [torch.randn(*s, dtype=torch.float64, requires_grad=True)
            for s in ((b, 4, d), (b, p), (b, h), (4 * h, d), (4 * h, p), (4 * h,), (4 * h,), (p, h))]
    assert torch.autograd.gradcheck(lambda *a: LstmpFunction.apply(*a)[0], args)


def test_layer_refuses_what_it_does_not_compute():
    for lstm in (torch.nn.LSTM(3, 4, batch_first=True), torch.nn.LSTM(3, 4, proj_size=2),
                 torch.nn.LSTM(3, 4, proj_size=2, batch_first=True, bidirectional=True)):
        with pytest.raises(ValueError, match="lstmp_layer: needs"):
            lstmp_layer(lstm, torch.zeros(1, 2, 3))


def trunks():
    torch.manual_seed(2)
    a = LstmTrunk(5, 2, 8, 4, impl="bptt")
    b = LstmTrunk(5, 2, 8, 4, impl="torch")
    b.load_state_dict(a.state_dict())
    return a, b


def test_trunk_uses_it_only_for_training_on_cpu(monkeypatch):
    from mtlasr.nnet import lstmp

    calls = []
    real = lstmp.lstmp_layer
    monkeypatch.setattr(lstmp, "lstmp_layer", lambda *a: calls.append(1) or real(*a))
    a, b = trunks()
    x = torch.randn(2, 6, 5)
    a(x)
    assert len(calls) == 2  # both layers
    with torch.no_grad():
        a(x)
    b(x)
    assert len(calls) == 2  # not without gradients, not with impl torch
    with pytest.raises(ValueError, match="model.lstm_impl: 'fast' is not torch or bptt"):
        LstmTrunk(5, 1, 4, 2, impl="fast")
    with pytest.raises(ValueError, match="model.lstm_impl"):
        load_config(None, ["model.lstm_impl=fast"])


def test_trunk_trains_the_same_model_with_state_carry():
    """A few Adam steps with carried (detached) state: the same weights as
    nn.LSTM's own training pass, to float rounding."""
    a, b = trunks()
    opts = [torch.optim.Adam(m.parameters(), lr=0.01) for m in (a, b)]
    states = [LstmState(), LstmState()]
    torch.manual_seed(3)
    for step in range(5):
        x, w = torch.randn(3, 6, 5), torch.randn(3, 6, 4)
        reset = torch.tensor([step == 0, step % 2 == 1, False])
        for m, opt, st in zip((a, b), opts, states):
            st.reset(reset)
            loss = (m(x, state=st)[-1] * w).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            st.detach()
    for (k, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(pa, pb, atol=1e-5, rtol=1e-5, msg=lambda m: f"{k}: {m}")
