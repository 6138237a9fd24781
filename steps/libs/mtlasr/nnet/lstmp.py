"""The LSTMP layer's training pass on CPU with a hand-written backward.

An LSTM with a recurrent projection (Sak et al., 2014, the LSTMP of seed
000; ``torch.nn.LSTM(proj_size=P)``) has no oneDNN kernel on CPU: torch
runs it as a chain of small operators per time step, each recorded by
autograd ("LSTM with projections is not supported with oneDNN"), and at
the sample config's sizes (16 chunks of 65 frames, 256 cells) the steps
are bound by that per-operator overhead. :class:`LstmpFunction` computes
the same function with preallocated time-major buffers and backpropagates
through time in its own loop (no autograd graph per time step); the
weight gradients are single matrix products over all time steps after
the loop. Same outputs and gradients as ``torch.nn.LSTM(proj_size)`` to
float rounding (tested against it and against finite differences).
Measured (egs/timit/s5/RESULTS.md, ``local/benchmark_lstm_impl.py``):
1.17-1.38x its training steps per second on the sample config (2 x 256
cells, 16 chunks), where per-operator overhead dominates, but no gain
(median 0.97x, rounds 0.85-1.26x) on seed 000's 3 x 1024 cells with 100
chunks, where the arithmetic does; hence ``model.lstm_impl: bptt`` is set
per config (conf/lstm_sample.yaml), not by default.

Equations (torch.nn.LSTM's, gate order i, f, g, o; Sak et al. 2014 eqs.
1-6 without peepholes):

  gates_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
  i, f, o = sigmoid(gates_t[i, f, o]),  g = tanh(gates_t[g])
  c_t = f * c_{t-1} + i * g,  h_t = W_hr (o * tanh(c_t))
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch


class LstmpFunction(torch.autograd.Function):
    """One LSTMP layer, forward and backward (see the module docstring).

    ``apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr)``:
      x ``(B, T, D)``; h0 ``(B, P)`` and c0 ``(B, H)``, the initial state;
      w_ih ``(4H, D)``, w_hh ``(4H, P)``, b_ih and b_hh ``(4H,)``, w_hr ``(P, H)``
      (the ``*_l0`` parameters of ``torch.nn.LSTM(D, H, proj_size=P)``).
    Returns ``(h (B, T, P), h_T (B, P), c_T (B, H))``; the final state is not
    differentiable (state carry-over detaches it anyway: truncated BPTT).
    First-order gradients only.
    """

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr):
        bsz, steps, _ = x.shape
        n_p, n_h = w_hr.shape
        xt = x.transpose(0, 1).contiguous()  # (T, B, D)
        gx = torch.addmm(b_ih + b_hh, xt.view(steps * bsz, -1), w_ih.t()).view(steps, bsz, 4 * n_h)
        act = torch.empty_like(gx)  # the activated gates i, f, g, o
        c = x.new_empty(steps + 1, bsz, n_h)  # c[t + 1] = c_t, c[0] = c0
        h = x.new_empty(steps + 1, bsz, n_p)  # h[t + 1] = h_t, h[0] = h0
        c[0], h[0] = c0, h0
        tc = x.new_empty(steps, bsz, n_h)  # tanh(c_t)
        m = x.new_empty(steps, bsz, n_h)  # o * tanh(c_t)
        w_hh_t, w_hr_t = w_hh.t(), w_hr.t()
        i_sl, f_sl, g_sl, o_sl = (slice(k * n_h, (k + 1) * n_h) for k in range(4))
        for t in range(steps):
            gates = torch.addmm(gx[t], h[t], w_hh_t)
            a = act[t]
            torch.sigmoid(gates, out=a)
            torch.tanh(gates[:, g_sl], out=a[:, g_sl])
            torch.addcmul(a[:, f_sl] * c[t], a[:, i_sl], a[:, g_sl], out=c[t + 1])
            torch.tanh(c[t + 1], out=tc[t])
            torch.mul(a[:, o_sl], tc[t], out=m[t])
            torch.mm(m[t], w_hr_t, out=h[t + 1])
        ctx.save_for_backward(xt, w_ih, w_hh, w_hr, act, c, tc, m, h)
        h_t, c_t = h[steps].clone(), c[steps].clone()
        ctx.mark_non_differentiable(h_t, c_t)
        return h[1:].transpose(0, 1), h_t, c_t

    @staticmethod
    def backward(ctx, grad_h, _grad_h_t, _grad_c_t):
        xt, w_ih, w_hh, w_hr, act, c, tc, m, h = ctx.saved_tensors
        steps, bsz, n_h4 = act.shape
        n_h = n_h4 // 4
        dy = grad_h.transpose(0, 1)  # (T, B, P)
        # The gates' derivatives for all time steps: dc_t reaches the pre-activations of i, f, g
        # through [g i (1 - i), c_{t-1} f (1 - f), i (1 - g^2)]; dm_t (m = o tanh c) reaches o's
        # through tanh(c_t) o (1 - o), and c_t through o (1 - tanh(c_t)^2).
        i, f, g, o = act.chunk(4, 2)
        coef = torch.cat([g * i * (1 - i), c[:-1] * f * (1 - f), i * (1 - g * g)], 2).view(steps, bsz, 3, n_h)
        o_coef = tc * o * (1 - o)
        dc_coef = o * (1 - tc * tc)
        dgates = act.new_empty(steps, bsz, n_h4)
        dh = act.new_empty(dy.shape)  # dL/dh_t: from the output and from the next step's gates
        dc = None
        for t in range(steps - 1, -1, -1):
            if t + 1 < steps:
                torch.addmm(dy[t], dgates[t + 1], w_hh, out=dh[t])
            else:
                dh[t] = dy[t]
            dm = torch.mm(dh[t], w_hr)
            dc = dm * dc_coef[t] if dc is None else torch.addcmul(dc * f[t + 1], dm, dc_coef[t])
            torch.mul(dc.unsqueeze(1), coef[t], out=dgates[t, :, :3 * n_h].view(bsz, 3, n_h))
            torch.mul(dm, o_coef[t], out=dgates[t, :, 3 * n_h:])
        need = ctx.needs_input_grad
        dg2 = dgates.view(steps * bsz, n_h4)
        grad_x = torch.mm(dg2, w_ih).view(steps, bsz, -1).transpose(0, 1) if need[0] else None
        grad_h0 = torch.mm(dgates[0], w_hh) if need[1] else None
        grad_c0 = dc * f[0] if need[2] else None
        grad_w_ih = torch.mm(dg2.t(), xt.view(steps * bsz, -1)) if need[3] else None
        grad_w_hh = torch.mm(dg2.t(), h[:-1].reshape(steps * bsz, -1)) if need[4] else None
        grad_b = dg2.sum(0)
        grad_w_hr = torch.mm(dh.view(steps * bsz, -1).t(), m.view(steps * bsz, n_h)) if need[7] else None
        return (grad_x, grad_h0, grad_c0, grad_w_ih, grad_w_hh, grad_b if need[5] else None,
                grad_b.clone() if need[6] else None, grad_w_hr)


def lstmp_layer(layer: torch.nn.LSTM, x: torch.Tensor,
                hc: Optional[Tuple[torch.Tensor, torch.Tensor]] = None
                ) -> Tuple[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
    """``layer(x, hc)`` (a one-layer, unidirectional, batch-first
    ``torch.nn.LSTM`` with ``proj_size``) through :class:`LstmpFunction`.

    Args: x ``(B, T, D)``; hc: ``(h0 (1, B, P), c0 (1, B, H))`` or None (zeros).
    Returns: ``(h (B, T, P), (h_T (1, B, P), c_T (1, B, H)))``, as the layer's.
    Raises: ValueError for a layer this does not compute (no projection,
    several layers, bidirectional, not batch-first, T = 0).
    """
    if (layer.proj_size <= 0 or layer.num_layers != 1 or layer.bidirectional or not layer.batch_first
            or not layer.bias):
        raise ValueError("lstmp_layer: needs a one-layer unidirectional batch-first nn.LSTM with proj_size and biases")
    if x.shape[1] == 0:
        raise ValueError("lstmp_layer: an input of 0 frames")
    bsz = x.shape[0]
    if hc is None:
        h0 = x.new_zeros(bsz, layer.proj_size)
        c0 = x.new_zeros(bsz, layer.hidden_size)
    else:
        h0, c0 = hc[0][0], hc[1][0]
    out, h_t, c_t = LstmpFunction.apply(x, h0, c0, layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0,
                                        layer.bias_hh_l0, layer.weight_hr_l0)
    return out, (h_t[None], c_t[None])
