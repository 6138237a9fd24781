#!/usr/bin/env python3
"""Training speed of the CTC encoders on CPU: input frames per second of one
optimiser step (forward, CTC loss, backward, Adam), per network config.

Usage:
  local/benchmark_encoders.py [options] <nnet-config> [<nnet-config> ...]

  e.g.: local/benchmark_encoders.py egs/multiling_espeak/s5/conf/ctc_blstm.yaml \\
            egs/wsj/s5/conf/ctc_glu.yaml
        local/benchmark_encoders.py --set model.cell_dim=128 --threads 1 egs/multiling_espeak/s5/conf/ctc_blstm.yaml

Each config is built as the trainer builds it (``mtlasr.nnet.build.build_model``,
main head only) for --input-dim features and --num-units CTC outputs, and
trained on a fixed random minibatch of --minibatch utterances of
--frames frames (10 ms each) with label sequences of --label-ratio units per
input frame. Figures are frames processed / wall seconds, best of --repeats
timed groups of --steps steps after one warm-up step; the parameter count is
printed beside them. A figure measures the arithmetic of the network, not the
data loading (which the trainer overlaps with it).
"""

import argparse
import os
import sys
import time


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("configs", nargs="+", help="network configs (YAML, as steps/nnet/train.sh --nnet-config)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override applied to every config (repeatable)")
    p.add_argument("--input-dim", type=int, default=40, help="feature dimension (default %(default)s)")
    p.add_argument("--num-units", type=int, default=100, help="CTC output units with blank (default %(default)s)")
    p.add_argument("--minibatch", type=int, default=10, help="utterances per step (default %(default)s)")
    p.add_argument("--frames", type=int, default=400, help="frames per utterance (default %(default)s)")
    p.add_argument("--label-ratio", type=float, default=0.08,
                   help="label units per input frame (default %(default)s: about 8 phones/s)")
    p.add_argument("--steps", type=int, default=3, help="timed steps per group (default %(default)s)")
    p.add_argument("--repeats", type=int, default=3, help="best of this many groups (default %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default %(default)s)")
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[v] = str(args.threads)
    import torch

    from mtlasr.nnet.config import check_model, load_config
    from mtlasr.nnet.ctc import ctc_loss
    from mtlasr.nnet.build import build_model

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    b, t = args.minibatch, args.frames
    x = torch.randn(b, t, args.input_dim)
    x_lens = torch.full((b,), t, dtype=torch.long)
    n_lab = max(1, int(t * args.label_ratio))
    y = torch.randint(1, args.num_units, (b, n_lab))
    y_lens = torch.full((b,), n_lab, dtype=torch.long)
    print(f"# minibatch {b} x {t} frames, {n_lab} labels each, {args.threads} thread(s), "
          f"torch {torch.__version__}")
    print(f"{'config':<48} {'encoder':<10} {'params':>9} {'frames/s':>10} {'s/step':>8}")
    for path in args.configs:
        cfg = load_config(path, args.set)
        check_model(cfg)
        model = build_model(cfg, args.input_dim, args.num_units)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        model.train()

        def step():
            opt.zero_grad()
            logits = model(x, heads=["main"], lengths=x_lens)["main"]
            out_lens = model.output_lengths(x_lens)
            loss = ctc_loss(logits, out_lens, y, y_lens).mean()
            loss.backward()
            opt.step()

        step()  # warm-up
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
            best = min(best, (time.perf_counter() - t0) / args.steps)
        params = sum(p.numel() for p in model.parameters())
        print(f"{path:<48} {cfg['model']['encoder']:<10} {params:>9} {b * t / best:>10.0f} {best:>8.3f}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
