#!/usr/bin/env python3
"""Benchmark of the i-vector hot paths, numpy against torch (CPU, and CUDA
where torch sees a GPU): seconds for UBM posteriors, Baum-Welch statistics,
the extractor's E-step accumulation and i-vector extraction.

Usage:
  local/benchmark_ivector_torch.py [options]

  e.g.: local/benchmark_ivector_torch.py                                  # 512 x 40, 400-dim, 6,000 frames
        local/benchmark_ivector_torch.py --num-gauss 2048 --utts 16       # Kaldi's usual UBM size (about 8 GB)

Synthetic data of a realistic size, the same for every backend: a random
full-covariance UBM (--num-gauss Gaussians of --dim dimensions), --utts
utterances of --frames frames drawn from it (so that posteriors are as
peaked as on speech), an extractor of --ivector-dim dimensions initialised
from the UBM. Settings as the steps' defaults: --num-gselect 20,
--min-post 0.025, --posterior-scale 1.0, --prior-offset 100, one batch of
all utterances (the jobs' batch is 64). Each figure is the best of
--repeats runs, in seconds, with --threads CPU threads (BLAS and torch);
each line also gives the largest relative difference of torch's result
from numpy's (0 where they are bit for bit equal). Prints one line per
measurement.
"""

import argparse
import os
import sys
import time


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-gauss", type=int, default=512, help="UBM Gaussians (default %(default)s)")
    p.add_argument("--dim", type=int, default=40, help="feature dimension (default %(default)s)")
    p.add_argument("--ivector-dim", type=int, default=400, help="i-vector dimension (default %(default)s)")
    p.add_argument("--utts", type=int, default=30, help="utterances (default %(default)s)")
    p.add_argument("--frames", type=int, default=200, help="frames per utterance (default %(default)s)")
    p.add_argument("--repeats", type=int, default=2, help="best of this many runs (default %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (default %(default)s)")
    p.add_argument("--devices", default="auto", help="torch devices, comma-separated; auto: cpu, and cuda "
                   "where torch sees a GPU (default %(default)s)")
    return p


# The steps' defaults (see the docstring): the measured setting.
NUM_GSELECT, MIN_POST, POSTERIOR_SCALE, PRIOR_OFFSET = 20, 0.025, 1.0, 100.0


def best_of(fn, repeats, sync=None):
    """(best wall seconds, the last result) of ``repeats`` calls of ``fn``."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        if sync:
            sync()
        best = min(best, time.perf_counter() - t0)
    return best, out


def synthetic(args, rng):
    """A random full UBM, utterances drawn from it, and an extractor."""
    import numpy as np

    from mtlasr import ivector as iv

    c, f = args.num_gauss, args.dim
    a = rng.standard_normal((c, f, f)) * (0.5 / np.sqrt(f))
    ubm = iv.FullGmm(rng.dirichlet(np.ones(c) * 3), rng.standard_normal((c, f)) * 2.0,
                     a @ a.transpose(0, 2, 1) + 0.5 * np.eye(f))
    chol = np.linalg.cholesky(ubm.covars)
    utts = []
    for _ in range(args.utts):
        comp = rng.choice(c, args.frames, p=ubm.weights)
        utts.append(ubm.means[comp] + np.einsum("tfg,tg->tf", chol[comp], rng.standard_normal((args.frames, f))))
    return ubm, utts, iv.IvectorExtractor.from_full_gmm(ubm, args.ivector_dim, PRIOR_OFFSET, seed=0)


def main(argv=None):
    args = get_parser().parse_args(argv)
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[v] = str(args.threads)
    import numpy as np
    import torch

    from mtlasr.ivector.backend import NumpyBackend, TorchBackend
    from mtlasr.threads import set_torch_threads

    set_torch_threads(args.threads, "--threads")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.devices == "auto" \
        else args.devices.split(",")
    ubm, utts, ie = synthetic(args, np.random.default_rng(0))
    dubm, n = ubm.to_diag(), args.utts * args.frames
    print(f"{args.utts} utterances x {args.frames} frames = {n} frames of dim {args.dim}; {args.num_gauss} Gaussians, "
          f"{args.ivector_dim}-dim i-vectors; {args.threads} CPU thread(s), best of {args.repeats}; "
          f"torch {torch.__version__}" + (f", GPU {torch.cuda.get_device_name()}" if "cuda" in devices else ""))

    def stages(b):
        """The four measurements on backend ``b``: {name: (seconds, result as numpy)}."""
        sync = torch.cuda.synchronize if isinstance(b, TorchBackend) and b.device.type == "cuda" else None
        u, bie = b.ubm(dubm, ubm), b.extractor(ie)
        post = [u.posteriors(x, NUM_GSELECT, MIN_POST, POSTERIOR_SCALE) for x in utts]  # warm-up, and the input
        xs = [b.array(x) for x in utts]
        out = {}
        out["UBM posteriors (gselect 20, full-covariance posteriors)"] = best_of(
            lambda: [b.numpy(u.posteriors(x, NUM_GSELECT, MIN_POST, POSTERIOR_SCALE)[1]) for x in xs],
            args.repeats, sync)
        t, stats = best_of(lambda: [b.stats(x, i, p, ie.num_gauss, True) for x, (i, p) in zip(xs, post)],
                           args.repeats, sync)
        out["statistics gamma, f, S from the posteriors"] = (t, [b.numpy(s[2]) for s in stats])
        gamma, f, s_sum = b.stack([s[0] for s in stats]), b.stack([s[1] for s in stats]), sum(s[2] for s in stats)

        def estep():
            acc = b.extractor_acc(ie)
            acc.accumulate(bie, gamma, f, s_sum, n)
            return b.acc_result(acc).R

        out["E-step accumulation (posterior of w, Y, R, objective)"] = best_of(estep, args.repeats, sync)

        def extract():
            st = [b.stats(x, *u.posteriors(x, NUM_GSELECT, MIN_POST, POSTERIOR_SCALE), ie.num_gauss, False)
                  for x in xs]
            return b.numpy(bie.extract(b.stack([s[0] for s in st]), b.stack([s[1] for s in st])))

        out["extraction (posteriors, statistics, i-vectors)"] = best_of(extract, args.repeats, sync)
        return out

    ref = stages(NumpyBackend())
    runs = {d: stages(TorchBackend(d)) for d in devices}
    for name, (t_np, want) in ref.items():
        parts = [f"numpy {t_np:.3f} s"]
        for d, res in runs.items():
            t, got = res[name]
            w, g = np.concatenate([np.ravel(a) for a in want]), np.concatenate([np.ravel(a) for a in got])
            diff = float(np.abs(g - w).max() / max(np.abs(w).max(), 1e-300))
            parts.append(f"torch {d} {t:.3f} s ({t_np / t:.1f}x, rel. diff {diff:.1e})")
        print(f"{name}: " + "; ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
