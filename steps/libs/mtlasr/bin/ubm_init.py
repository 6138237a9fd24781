"""Initialise a diagonal-covariance UBM from a random subset of frames.

Usage:
  python3 -m mtlasr.bin.ubm_init [options] <data-dir> <out.dubm>

  e.g.: python3 -m mtlasr.bin.ubm_init --num-gauss 256 --num-gauss-init 0 --num-iters 20 \\
          --num-frames 500000 --norm-vars true --delta-order 2 --cmvn-mode speaker --seed 0 \\
          data/train exp/diag_ubm/0.dubm

Kaldi's gmm-global-init-from-feats (see mtlasr.ivector.ubm.init_diag_ubm):
means at random frames, the global variance, EM over all Gaussians with
the heaviest ones split until --num-gauss is reached. Features get CMVN
per --cmvn-mode (variance too with --norm-vars true) plus deltas of
--delta-order; these options are recorded next to the output
(``cmvn_opts``, ``delta_order``) and read back by every later program.
Utterances with no frames are skipped with a warning; non-finite features
are an error naming the utterance.

The required options are steps/ivector/train_diag_ubm.sh's, which holds
their defaults; --min-count and --var-floor-factor default to the
constants of mtlasr.ivector.ubm.
"""

import logging
import sys
from pathlib import Path

import numpy as np

from mtlasr.features import CMVN_MODES, FeatureOpts, FeatureReader
from mtlasr.ivector import init_diag_ubm, ubm
from mtlasr.cli import make_parser, program

logger = logging.getLogger("ubm_init")


def get_parser():
    p = make_parser(__doc__, "data_dir", "out_dubm")
    p.add_argument("--num-gauss", type=int, required=True, help="Gaussians in the UBM")
    p.add_argument("--num-gauss-init", type=int, required=True, help="Gaussians to start from; 0 means num-gauss / 2")
    p.add_argument("--num-iters", type=int, required=True, help="EM iterations")
    p.add_argument("--num-frames", type=int, required=True, help="random subset of frames to train on")
    p.add_argument("--min-count", type=float, default=ubm.MIN_COUNT,
                   help="Gaussians with less occupancy keep their parameters (default %(default)s)")
    p.add_argument("--var-floor-factor", type=float, default=ubm.VAR_FLOOR_FACTOR,
                   help="variance floor relative to the global variance (default %(default)s)")
    p.add_argument("--norm-vars", required=True, choices=["true", "false"], help="CMVN variance normalisation")
    p.add_argument("--delta-order", type=int, required=True, help="delta order")
    p.add_argument("--cmvn-mode", required=True, choices=CMVN_MODES,
                   help="CMVN: the data dir's per-speaker stats, per utterance, or none")
    p.add_argument("--seed", type=int, required=True, help="random seed (frames, initial means, splits)")
    return p


def run(args):
    opts = FeatureOpts(args.norm_vars == "true", args.delta_order, args.cmvn_mode)
    out_dir = Path(args.out_dubm).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    opts.write(out_dir)
    feats = FeatureReader(args.data_dir, opts)
    blocks = [x.astype(np.float32) for _, x in feats]
    if not blocks:
        raise ValueError(f"{args.data_dir}: no utterance has features")
    frames = np.concatenate(blocks)
    logger.info("read %s", feats)
    rng = np.random.default_rng(args.seed)
    if frames.shape[0] > args.num_frames:
        frames = frames[np.sort(rng.choice(frames.shape[0], args.num_frames, replace=False))]
    logger.info("initialising %d Gaussians from %d frames of dim %d", args.num_gauss, *frames.shape)
    gmm, _ = init_diag_ubm(frames, args.num_gauss, args.num_gauss_init, args.num_iters, seed=args.seed,
                           var_floor_factor=args.var_floor_factor, min_count=args.min_count)
    gmm.save(args.out_dubm)
    logger.info("wrote %s (%d Gaussians)", args.out_dubm, gmm.num_gauss)
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
