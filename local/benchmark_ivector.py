#!/usr/bin/env python3
"""Benchmark of the UBM and i-vector code on CPU: frames per second of one
EM iteration of the diagonal UBM, of the full UBM, of the i-vector
extractor, and of extraction (utterance and online i-vectors).

Usage:
  local/benchmark_ivector.py [options] [<data-dir>]

  e.g.: local/benchmark_ivector.py data/train                      # sample sizes (64 x 32)
        local/benchmark_ivector.py --num-gauss 256 --ivector-dim 100 data/train   # seed 000 sizes

Runs in one process on the data dir's features (MFCC + deltas, no CMVN, as
run.sh stage 4), after a short UBM initialisation that is not timed. Each
figure is frames processed / wall seconds, best of --repeats runs, with
--threads BLAS threads. Prints one line per measurement.

The UBM and posterior settings are those of the steps' defaults
(steps/ivector/train_diag_ubm.sh --num-gselect 30; train_full_ubm.sh and
train_ivector_extractor.sh --num-gselect 20, --min-post 0.025,
--posterior-scale 1.0, --prior-offset 100, --variance-floor-factor 0.1;
extract_ivectors.sh --ivector-period 10), repeated here as the
measurement's fixed setting.
"""

import argparse
import os
import sys
import time


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-gauss", type=int, default=64, help="UBM Gaussians (default %(default)s)")
    p.add_argument("--ivector-dim", type=int, default=32, help="i-vector dimension (default %(default)s)")
    p.add_argument("--delta-order", type=int, default=2)
    p.add_argument("--cmvn-mode", default="none", choices=["none", "utterance", "speaker"])
    p.add_argument("--repeats", type=int, default=3, help="best of this many runs (default %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads (default %(default)s)")
    p.add_argument("data_dir", nargs="?", default="data/train")
    return p


# The steps' defaults (see the docstring): the measured setting.
DIAG_GSELECT, NUM_GSELECT, MIN_POST, POSTERIOR_SCALE = 30, 20, 0.025, 1.0
PRIOR_OFFSET, VARIANCE_FLOOR_FACTOR, IVECTOR_PERIOD = 100.0, 0.1, 10


def best_time(fn, repeats):
    best = float("inf")
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv=None):
    args = get_parser().parse_args(argv)
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[v] = str(args.threads)
    import numpy as np

    from mtlasr import ivector as iv
    from mtlasr.features import iter_features

    feats = dict(iter_features(args.data_dir, False, args.delta_order, cmvn_mode=args.cmvn_mode))
    x_all = np.concatenate(list(feats.values()))
    n = x_all.shape[0]
    print(f"data: {args.data_dir}, {len(feats)} utterances, {n} frames of dim {x_all.shape[1]}; "
          f"{args.num_gauss} Gaussians, {args.ivector_dim}-dim i-vectors; {args.threads} thread(s), "
          f"best of {args.repeats}")
    dubm, _ = iv.init_diag_ubm(x_all, args.num_gauss, 0, 4, seed=0)

    def diag_iter():
        sel = dubm.gselect(x_all, DIAG_GSELECT)
        acc = iv.DiagGmmAcc(dubm.num_gauss, dubm.dim)
        acc.accumulate(dubm, x_all, sel)
        return acc.update(dubm)[0]

    t, _ = best_time(diag_iter, args.repeats)
    print(f"diagonal UBM EM iteration (gselect 30 + accumulate + update): {n / t:,.0f} frames/s ({t:.2f} s)")

    fubm = iv.FullGmm.from_diag(dubm)
    sel20 = dubm.gselect(x_all, NUM_GSELECT)

    def full_iter():
        acc = iv.FullGmmAcc(fubm.num_gauss, fubm.dim)
        acc.accumulate(fubm, x_all, sel20)
        return acc.update(fubm)[0]

    t, fubm = best_time(full_iter, args.repeats)
    print(f"full UBM EM iteration (accumulate + update, gselect 20 given): {n / t:,.0f} frames/s ({t:.2f} s)")

    def stats():
        g, f, s = [], [], 0
        for x in feats.values():
            idx, post = iv.posteriors(fubm, dubm, x, NUM_GSELECT, MIN_POST, POSTERIOR_SCALE)
            gamma, first, second = iv.utterance_stats(x, idx, post, fubm.num_gauss, second_order=True)
            g.append(gamma)
            f.append(first)
            s = s + second
        return np.stack(g), np.stack(f), s

    t, (gam, first, s_sum) = best_time(stats, args.repeats)
    print(f"UBM posteriors + statistics (gselect 20, min-post 0.025): {n / t:,.0f} frames/s ({t:.2f} s)")
    ie = iv.IvectorExtractor.from_full_gmm(fubm, args.ivector_dim, PRIOR_OFFSET, seed=0)

    def ie_iter():
        acc = iv.IvectorExtractorAcc.for_extractor(ie)
        acc.accumulate(ie, gam, first, s_sum, n)
        return acc.update(ie, VARIANCE_FLOOR_FACTOR)

    t_est, ie2 = best_time(ie_iter, args.repeats)
    print(f"extractor EM iteration on the statistics (E-step + M-step): {n / t_est:,.0f} frames/s ({t_est:.2f} s)")
    print(f"extractor EM iteration including posteriors + statistics: {n / (t_est + t):,.0f} frames/s")

    def extract():
        for x in feats.values():
            idx, post = iv.posteriors(fubm, dubm, x, NUM_GSELECT, MIN_POST, POSTERIOR_SCALE)
            gamma, first, _ = iv.utterance_stats(x, idx, post, fubm.num_gauss)
            ie2.extract(gamma[None], first[None])

    t, _ = best_time(extract, args.repeats)
    print(f"extraction, one i-vector per utterance (posteriors included): {n / t:,.0f} frames/s ({t:.2f} s)")

    def online():
        for x in feats.values():
            idx, post = iv.posteriors(fubm, dubm, x, NUM_GSELECT, MIN_POST, POSTERIOR_SCALE)
            ie2.online_ivectors(x, idx, post, period=IVECTOR_PERIOD)

    t, _ = best_time(online, args.repeats)
    print(f"online extraction, an i-vector every 10 frames (posteriors included): {n / t:,.0f} frames/s ({t:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
