#!/usr/bin/env python3
"""Training speed of implementations of the LSTMP trunk on CPU: full
training steps per second of the chunked LSTM-HMM (mtlasr.nnet.model's
LstmTrunk), each implementation against torch.nn.LSTM(proj_size=P).

Usage:
  local/benchmark_lstm_impl.py [options]

  e.g.: local/benchmark_lstm_impl.py                   # egs/timit/s5/conf/lstm_sample.yaml: 2 x 256, proj 128
        local/benchmark_lstm_impl.py --layers 3 --cell 1024 --proj 256   # egs/timit/s5/conf/lstm.yaml
        local/benchmark_lstm_impl.py --check             # the variants' outputs and gradients only
        local/benchmark_lstm_impl.py --variants torch_lstmp,bptt_lstmp --seconds 30 --json out.json

Why: the sample config trains at about 2,450 labels/s on an idle 2-core
machine, some 20 GFLOP/s of LSTM matrix products against a 130-153 GFLOP/s
matmul peak: at 16 chunks per minibatch the steps are bound by per-operator
overhead, not by arithmetic. On CPU torch says, for an LSTM with
``proj_size``: "UserWarning: LSTM with projections is not supported with
oneDNN. Using default implementation." (aten/src/ATen/native/RNN.cpp): the
LSTMP runs as a chain of aten operators per time step, each recorded by
autograd, where an LSTM without projection runs as one fused oneDNN
(mkldnn_rnn_layer) primitive forward and backward.

What is measured: for each variant, training steps on one fixed random
minibatch (seed --seed) of --batch chunks of --frames input frames of
--input-dim features (default 65 = 40 left context + 20 chunk + 5 delay
frames, as conf/lstm_sample.yaml's chunking): the trunk of --layers layers
(--cell cells, projection --proj), a linear output layer over --num-pdfs
pdfs on the last --chunk positions, the mean cross-entropy, backward, and
an Adam step. The variants:

  torch_lstmp          torch.nn.LSTM(D, H, proj_size=P, batch_first=True) per layer
                       (mtlasr.nnet.model.LstmTrunk with model.lstm_impl torch, the default).
  onednn_lstm_linear   torch.nn.LSTM(D, H) without projection (oneDNN's fused LSTM on CPU), then
                       nn.Linear(H, P) per layer. A DIFFERENT model: the projection is outside the recurrence
                       (the recurrence sees the H-dim output), more parameters and FLOPs.
  native_lstm_linear   onednn_lstm_linear with oneDNN switched off (torch.backends.mkldnn.flags(enabled=False)):
                       what the fused kernel buys. A different model too.
  loop_lstmp           the LSTMP in Python (lstmp_loop): input-to-gate products of all time steps as one matrix
                       product, then per time step the recurrent product on the projected state, the gates
                       (order i, f, g, o, as torch), cell and projection h_t = W_hr (o_t * tanh(c_t)); autograd.
  loop_lstmp_compiled  loop_lstmp's trunk under torch.compile (inductor; needs a C++ compiler), the time loop
                       unrolled. The compilation (first step) is excluded from steps/s and printed in the warm-up
                       column: about 1.5 min on 2 shared cores for the sample sizes, a few seconds once inductor's
                       cache (/tmp/torchinductor_$USER) holds the graphs.
  jit_lstmp            loop_lstmp under torch.jit.script (deprecated in torch 2.13: a DeprecationWarning).
  bptt_lstmp           model.lstm_impl bptt (conf/lstm_sample.yaml): the same equations with a
                       hand-written backward (mtlasr.nnet.lstmp.LstmpFunction: backpropagation through
                       time in a loop of 6 operators per step, the weight gradients as single matrix products
                       over all time steps afterwards), no autograd graph per time step. First-order gradients
                       only (no double backward).

The output layer and loss are the same module for all; dropout (0 in
conf/lstm_sample.yaml and conf/lstm.yaml) is left out.

The same-model variants (same-model yes: the function of
nn.LSTM(proj_size=P), Sak et al. 2014's LSTMP with the projection inside
the recurrence) start from the baseline's weights, so their first-step
losses (loss0) agree to about 1e-6; --check compares their outputs and
gradients with the baseline's on the given sizes and exits 1 beyond
--tolerance. A variant that cannot be built or run (e.g. torch.compile
without a compiler) gets a row "failed: <reason>" instead of figures.

Each variant first runs --warmup steps (the first, with compilation, is
timed and printed), then --repeats rounds, interleaved round-robin over
the variants so that a change in the machine's load hits all of them alike,
each of as many steps as fit in --seconds. The table gives per variant:
same model or not, parameters (output layer included), median steps/s and
labels/s (--batch x --chunk labelled frames per step) over the rounds, the
ratio of the median to the baseline's (torch_lstmp), the GFLOP/s of
matrix products (forward and backward, 3 x 2 x the multiply-adds of the
forward: a count of the arithmetic, the same for every same-model
variant), the min and max labels/s of the rounds, the first step's
seconds (warm-up s) and its loss (loss0). --threads caps torch at that many
threads (mtlasr.threads: at most the job's cores). --json OUT also writes
the settings and rows.

Figures for a report must come from an otherwise idle machine (one job, the
given threads): with another process on the cores the steps slow down
unevenly, and the interleaved rounds' min/max show how much.

Other switches, not variants: torch.backends.mkldnn (oneDNN) only affects
the LSTM without projection (native_lstm_linear shows its effect);
channels-last and the oneDNN fusions of convolutions do not apply to an
LSTM; torch.set_flush_denormal is left off.
"""

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "steps" / "libs"))
from mtlasr.nnet.lstmp import LstmpFunction  # noqa: E402

VARIANTS = ("torch_lstmp", "onednn_lstm_linear", "native_lstm_linear", "loop_lstmp", "loop_lstmp_compiled",
            "jit_lstmp", "bptt_lstmp")
DEFAULT_VARIANTS = ("torch_lstmp", "onednn_lstm_linear", "loop_lstmp", "loop_lstmp_compiled", "jit_lstmp",
                    "bptt_lstmp")
# Whether a variant computes the function of nn.LSTM(proj_size=P) (the LSTMP, projection in the recurrence).
SAME_MODEL = {v: v not in ("onednn_lstm_linear", "native_lstm_linear") for v in VARIANTS}
BASELINE = "torch_lstmp"


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default %(default)s)")
    p.add_argument("--batch", type=int, default=16, help="chunks per minibatch (default %(default)s)")
    p.add_argument("--frames", type=int, default=65,
                   help="input frames per chunk (default %(default)s = 40 left + 20 chunk + 5 delay)")
    p.add_argument("--chunk", type=int, default=20,
                   help="labelled positions per chunk, the last ones of the output (default %(default)s)")
    p.add_argument("--input-dim", type=int, default=13, help="feature dimension (default %(default)s)")
    p.add_argument("--layers", type=int, default=2, help="LSTM layers (default %(default)s; conf/lstm.yaml: 3)")
    p.add_argument("--cell", type=int, default=256, help="LSTM cells (default %(default)s; conf/lstm.yaml: 1024)")
    p.add_argument("--proj", type=int, default=128,
                   help="projection size (default %(default)s; conf/lstm.yaml: 256)")
    p.add_argument("--num-pdfs", type=int, default=144, help="output pdfs (default %(default)s)")
    p.add_argument("--seconds", type=float, default=10.0, help="seconds per variant per round (default %(default)s)")
    p.add_argument("--repeats", type=int, default=3,
                   help="rounds, interleaved round-robin across the variants (default %(default)s)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per variant first (default %(default)s)")
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                   help=f"comma-separated, of: {', '.join(VARIANTS)} (default %(default)s)")
    p.add_argument("--lr", type=float, default=0.002, help="Adam learning rate (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and data (default %(default)s)")
    p.add_argument("--check", action="store_true",
                   help="only compare the same-model variants' outputs and gradients with torch_lstmp's")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="--check: largest absolute difference accepted (default %(default)s)")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the settings and rows to OUT (JSON)")
    return p


def parse_variants(text):
    """The names in the comma-separated ``text``, checked against VARIANTS.
    Raises: ValueError for an unknown name or an empty list."""
    names = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in names if v not in VARIANTS]
    if bad or not names:
        raise ValueError(f"unknown variant(s) {', '.join(bad) or '(none given)'}; choose from {', '.join(VARIANTS)}")
    return names


# ---------------------------------------------------------------------------------------------------------------
# The LSTMP written out.

def lstmp_loop(x, w_ih, w_hh, b_ih, b_hh, w_hr):
    """One LSTMP layer (Sak et al. 2014; the equations of
    torch.nn.LSTM(proj_size=P), gate order i, f, g, o), zero initial state,
    through autograd:

      gates_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh;  c_t = f * c_{t-1} + i * g;
      h_t = W_hr (o * tanh(c_t)).

    Args: x ``(B, T, D)``; w_ih ``(4H, D)``, w_hh ``(4H, P)``, b_ih and b_hh
    ``(4H,)``, w_hr ``(P, H)``. Returns the outputs h ``(B, T, P)``.
    TorchScript-able (jit_lstmp) and traceable by torch.compile.
    """
    bsz, steps = x.shape[0], x.shape[1]
    gx = torch.nn.functional.linear(x, w_ih, b_ih + b_hh)  # (B, T, 4H): all time steps at once
    h = x.new_zeros(bsz, w_hr.shape[0])
    c = x.new_zeros(bsz, w_hr.shape[1])
    w_hh_t, w_hr_t = w_hh.t(), w_hr.t()
    outs = []
    for t in range(steps):
        gates = torch.addmm(gx[:, t], h, w_hh_t)
        i, f, g, o = gates.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.mm(torch.sigmoid(o) * torch.tanh(c), w_hr_t)
        outs.append(h)
    return torch.stack(outs, 1)


def lstmp_bptt(x, w_ih, w_hh, b_ih, b_hh, w_hr):
    """lstmp_loop's function (same shapes, zero initial state) through
    mtlasr.nnet.lstmp.LstmpFunction, the hand-written backward the trainer
    uses with model.lstm_impl bptt."""
    bsz = x.shape[0]
    h0, c0 = x.new_zeros(bsz, w_hr.shape[0]), x.new_zeros(bsz, w_hr.shape[1])
    return LstmpFunction.apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr)[0]


# ---------------------------------------------------------------------------------------------------------------
# The networks.

class LoopLayer(nn.Module):
    """One LSTMP layer with nn.LSTM(proj_size)'s parameters, copied from
    ``lstm`` (a one-layer unidirectional nn.LSTM with proj_size > 0), run by
    ``fn`` (lstmp_loop, its scripted form, or lstmp_bptt).
    forward: x ``(B, T, D)`` -> ``(B, T, P)``."""

    def __init__(self, lstm, fn):
        super().__init__()
        self.fn = fn
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"):
            setattr(self, name, nn.Parameter(getattr(lstm, name + "_l0").detach().clone()))

    def forward(self, x):
        return self.fn(x, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, self.weight_hr)


class LstmLinear(nn.Module):
    """nn.LSTM(D, H) then nn.Linear(H, P): the projection outside the
    recurrence. forward: x ``(B, T, D)`` -> ``(B, T, P)``; with
    ``onednn=False`` oneDNN is switched off around the LSTM."""

    def __init__(self, input_dim, cell, proj, onednn=True):
        super().__init__()
        self.lstm = nn.LSTM(input_dim, cell, batch_first=True)
        self.proj = nn.Linear(cell, proj)
        self.onednn = onednn

    def forward(self, x):
        if self.onednn:
            return self.proj(self.lstm(x)[0])
        with warnings.catch_warnings():  # flags() warns that TF32 on oneDNN needs an Intel GPU
            warnings.simplefilter("ignore")
            with torch.backends.mkldnn.flags(enabled=False):
                return self.proj(self.lstm(x)[0])


class Trunk(nn.Module):
    """Layers applied in turn. forward: x ``(B, T, D)`` -> the last layer's
    output ``(B, T, P)``."""

    def __init__(self, layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class Net(nn.Module):
    """Trunk, linear output layer on the last ``chunk`` positions, mean
    cross-entropy. forward(x ``(B, T, D)``, y ``(B, chunk)`` pdf ids) -> the
    scalar loss."""

    def __init__(self, trunk, head, chunk):
        super().__init__()
        self.trunk, self.head, self.chunk = trunk, head, chunk

    def forward(self, x, y):
        h = self.trunk(x)
        h = h[-1] if isinstance(h, list) else h  # LstmTrunk: every layer's output
        logits = self.head(h[:, -self.chunk:])
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def build(variant, args):
    """The network of ``variant`` for the sizes of ``args`` (--input-dim,
    --layers, --cell, --proj, --num-pdfs, --chunk), seeded with --seed: the
    same-model variants get the weights of the baseline's nn.LSTM layers,
    all variants the same output layer.

    Returns an nn.Module: forward(x ``(B, T, D)``, y ``(B, chunk)``) -> scalar
    loss; its ``trunk(x)`` gives ``(B, T, P)`` (torch_lstmp: the list of the
    layers' outputs, as LstmTrunk).
    Raises: ValueError for an unknown variant; whatever torch.jit.script or
    torch.compile raise (the caller records it).
    """
    from mtlasr.nnet.model import LstmTrunk

    torch.manual_seed(args.seed)
    base = LstmTrunk(args.input_dim, args.layers, args.cell, args.proj, impl="torch")
    head = nn.Linear(args.proj, args.num_pdfs)
    if variant == "torch_lstmp":
        trunk = base
    elif variant in ("onednn_lstm_linear", "native_lstm_linear"):
        torch.manual_seed(args.seed + 1)
        dims = [args.input_dim] + [args.proj] * args.layers
        trunk = Trunk([LstmLinear(dims[i], args.cell, args.proj, variant == "onednn_lstm_linear")
                       for i in range(args.layers)])
    elif variant in ("loop_lstmp", "loop_lstmp_compiled", "jit_lstmp", "bptt_lstmp"):
        fn = {"loop_lstmp": lstmp_loop, "loop_lstmp_compiled": lstmp_loop, "bptt_lstmp": lstmp_bptt}.get(variant)
        if variant == "jit_lstmp":
            fn = torch.jit.script(lstmp_loop)
        trunk = Trunk([LoopLayer(lstm, fn) for lstm in base.layers])
    else:
        raise ValueError(f"unknown variant {variant}")
    if variant == "loop_lstmp_compiled":
        trunk = torch.compile(trunk)  # compiled when first called
    return Net(trunk, head, args.chunk)


def trunk_output(net, x):
    """The last layer's output ``(B, T, P)`` of a network from :func:`build`
    for x ``(B, T, D)``."""
    out = net.trunk(x)
    return out[-1] if isinstance(out, list) else out


def forward_macs(args, variant):
    """Multiply-adds of the forward matrix products per input frame of one
    chunk: each layer's input-to-gate, recurrent and projection products
    (recurrence on P dims for the LSTMP, on H for the LSTM + Linear), plus
    the output layer on the labelled fraction of the frames."""
    h, p = args.cell, args.proj
    rec = p if SAME_MODEL[variant] else h
    dims = [args.input_dim] + [p] * args.layers
    macs = sum(4 * h * dims[i] + 4 * h * rec + p * h for i in range(args.layers))
    return macs + p * args.num_pdfs * args.chunk / args.frames


def data(args):
    """The fixed random minibatch: x ``(batch, frames, input_dim)``, y
    ``(batch, chunk)`` pdf ids, from --seed."""
    gen = torch.Generator().manual_seed(args.seed)
    x = torch.randn(args.batch, args.frames, args.input_dim, generator=gen)
    y = torch.randint(0, args.num_pdfs, (args.batch, args.chunk), generator=gen)
    return x, y


def failure(exc):
    """'failed: <reason>', the exception's type and first line, shortened."""
    text = str(exc).strip().splitlines()
    reason = f"{type(exc).__name__}: {text[0] if text else ''}"
    return "failed: " + (reason[:117] + "..." if len(reason) > 120 else reason)


class Runner:
    """One variant's network, optimiser and step counts.

    ``ok`` is False (and ``status`` 'failed: ...') where building, the
    warm-up or a timed step raised."""

    def __init__(self, variant, args, x, y):
        self.variant, self.args, self.x, self.y = variant, args, x, y
        self.rates, self.status, self.ok = [], "ok", True
        self.warmup_s, self.loss0, self.params = float("nan"), float("nan"), 0
        try:
            self.net = build(variant, args)
            self.params = sum(p.numel() for p in self.net.parameters())
            self.opt = torch.optim.Adam(self.net.parameters(), lr=args.lr)
            t0 = time.perf_counter()
            self.loss0 = self.step()
            self.warmup_s = time.perf_counter() - t0
            for _ in range(max(0, args.warmup - 1)):
                self.step()
        except Exception as exc:  # noqa: BLE001 - recorded in the table (e.g. no C++ compiler for inductor)
            self.ok, self.status = False, failure(exc)

    def step(self):
        """One training step; returns its loss (float)."""
        self.opt.zero_grad(set_to_none=True)
        loss = self.net(self.x, self.y)
        loss.backward()
        self.opt.step()
        return float(loss.detach())

    def round(self, seconds):
        """Steps for ``seconds`` (at least one); records steps/s."""
        if not self.ok:
            return
        try:
            n, t0 = 0, time.perf_counter()
            while True:
                self.step()
                n += 1
                elapsed = time.perf_counter() - t0
                if elapsed >= seconds:
                    break
            self.rates.append(n / elapsed)
        except Exception as exc:  # noqa: BLE001
            self.ok, self.status = False, failure(exc)


def check(args, variants):
    """Outputs and gradients (input and every weight of the trunk) of each
    same-model variant against torch_lstmp's from the same weights and
    data, with a sum of random-weighted outputs as the loss. Prints one line
    per variant with the largest absolute differences and the operators
    named like LSTM or RNN that its forward and backward ran
    (torch.profiler: aten::mkldnn_rnn_layer where oneDNN's LSTM ran); returns 0, or 1
    where a difference exceeds --tolerance or a variant failed."""
    x, _ = data(args)
    gen = torch.Generator().manual_seed(args.seed + 2)
    weight = torch.randn(args.batch, args.frames, args.proj, generator=gen)

    def run(variant):
        net = build(variant, args)
        xg = x.clone().requires_grad_(True)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            out = trunk_output(net, xg)
            (out * weight).sum().backward()
        grads = [xg.grad] + [p.grad for p in net.trunk.parameters()]
        ops = sorted({e.key for e in prof.key_averages() if "lstm" in e.key.lower() or "rnn" in e.key.lower()})
        return out.detach(), grads, ops

    ref_out, ref_grads, ref_ops = run(BASELINE)
    print(f"{BASELINE}: LSTM operators {', '.join(ref_ops) or '-'}")
    rc = 0
    for variant in variants:
        if variant == BASELINE:
            continue
        try:
            out, grads, ops = run(variant)
        except Exception as exc:  # noqa: BLE001
            print(f"{variant}: {failure(exc)}")
            rc = 1
            continue
        if not SAME_MODEL[variant]:
            print(f"{variant}: a different model, not compared; LSTM operators {', '.join(ops) or '-'}")
            continue
        d_out = float((out - ref_out).abs().max())
        d_grad = max(float((g - r).abs().max()) for g, r in zip(grads, ref_grads))
        bad = not (d_out <= args.tolerance and d_grad <= args.tolerance)
        rc |= bad
        print(f"{variant}: max |output diff| {d_out:.2e}, max |gradient diff| {d_grad:.2e} "
              f"({'FAILS' if bad else 'within'} {args.tolerance:g}); LSTM operators {', '.join(ops) or '-'}")
    return rc


def table(args, runners):
    """The result rows (dicts) and their printed lines."""
    base = next((r for r in runners if r.variant == BASELINE and r.ok and r.rates), None)
    base_rate = statistics.median(base.rates) if base else None
    labels = args.batch * args.chunk
    rows = []
    for r in runners:
        row = {"variant": r.variant, "same_model": SAME_MODEL[r.variant], "params": r.params, "status": r.status,
               "warmup_s": r.warmup_s, "loss0": r.loss0}
        if r.ok and r.rates:
            med = statistics.median(r.rates)
            row.update(steps_per_s=med, labels_per_s=med * labels, labels_per_s_min=min(r.rates) * labels,
                       labels_per_s_max=max(r.rates) * labels, rounds=len(r.rates),
                       ratio=med / base_rate if base_rate else None,
                       gflops=med * 3 * 2 * forward_macs(args, r.variant) * args.batch * args.frames / 1e9)
        rows.append(row)
    head = (f"{'variant':<20} {'same':>4} {'params':>9} {'steps/s':>8} {'labels/s':>9} {'ratio':>6} "
            f"{'GFLOP/s':>7} {'labels/s min..max':>17} {'warm-up s':>9} {'loss0':>9}")
    lines = [head]
    for row in rows:
        start = f"{row['variant']:<20} {'yes' if row['same_model'] else 'no':>4} {row['params']:>9}"
        if "steps_per_s" not in row:
            lines.append(f"{start} {row['status']}")
            continue
        ratio = f"{row['ratio']:.2f}" if row["ratio"] else "-"
        span = f"{row['labels_per_s_min']:.0f}..{row['labels_per_s_max']:.0f}"
        lines.append(f"{start} {row['steps_per_s']:>8.2f} {row['labels_per_s']:>9.0f} {ratio:>6} "
                     f"{row['gflops']:>7.1f} {span:>17} {row['warmup_s']:>9.2f} {row['loss0']:>9.6f}")
    return rows, lines


def main(argv=None):
    parser = get_parser()
    args = parser.parse_args(argv)
    try:
        variants = parse_variants(args.variants)
    except ValueError as exc:
        parser.error(str(exc))
    if not 0 < args.chunk <= args.frames:
        parser.error(f"--chunk must be in 1..--frames ({args.frames}), got {args.chunk}")
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[v] = str(args.threads)  # for the processes started from here (inductor's compile workers)
    from mtlasr.threads import set_torch_threads

    threads = set_torch_threads(args.threads, "--threads")
    if "loop_lstmp_compiled" in variants:
        import torch._inductor.config as inductor_config

        inductor_config.compile_threads = threads  # inductor's compile workers: as many as the threads asked for
    torch.manual_seed(args.seed)
    print(f"# LSTM {args.layers} x {args.cell} cells, projection {args.proj}, input {args.input_dim}, "
          f"{args.num_pdfs} pdfs; {args.batch} chunks x {args.frames} frames, {args.chunk} labelled; "
          f"{threads} thread(s); torch {torch.__version__}, oneDNN "
          f"{'on' if torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled else 'off'}",
          flush=True)
    if args.check:
        return check(args, variants)
    x, y = data(args)
    runners = []
    for v in variants:
        runners.append(Runner(v, args, x, y))
        r = runners[-1]
        print(f"# {v}: " + (f"first step (warm-up, compilation) {r.warmup_s:.2f} s" if r.ok else r.status), flush=True)
    for k in range(args.repeats):
        for r in runners:
            r.round(args.seconds)
        print(f"# round {k + 1}/{args.repeats}: " + ", ".join(
            f"{r.variant} {r.rates[-1] * args.batch * args.chunk:.0f}" for r in runners if r.ok and len(r.rates) > k)
            + " labels/s", flush=True)
    rows, lines = table(args, runners)
    print(f"# median over {args.repeats} round(s) of {args.seconds:g} s; ratio: against {BASELINE}; GFLOP/s: "
          "matrix products, forward and backward")
    print("\n".join(lines))
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k != "json"}
        Path(args.json).write_text(json.dumps({"settings": settings, "threads": threads, "torch": torch.__version__,
                                               "rows": rows}, indent=1, default=str) + "\n")
    return 0 if all(r.ok for r in runners) else 1


if __name__ == "__main__":
    sys.exit(main())
