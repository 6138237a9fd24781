"""Initialise a diagonal-covariance UBM from a random subset of frames.

Usage:
  python3 -m mtlasr.bin.ubm_init [options] <data-dir> <out.dubm>

  e.g.: python3 -m mtlasr.bin.ubm_init --num-gauss 256 --num-frames 500000 \\
          --norm-vars true --delta-order 2 data/train exp/diag_ubm/0.dubm

Kaldi's gmm-global-init-from-feats (see mtlasr.ivector.init_diag_ubm):
means at random frames, the global variance, EM over all Gaussians with
the heaviest ones split until --num-gauss is reached. Features are speaker
CMVN (variance too with --norm-vars true) plus deltas of --delta-order;
these options are recorded next to the output (``cmvn_opts``,
``delta_order``) and read back by every later program. Utterances with no
frames are skipped with a warning; non-finite features are an error naming
the utterance.
"""

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from mtlasr import ivector

logger = logging.getLogger("ubm_init")


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-gauss", type=int, default=256, help="Gaussians in the UBM (default %(default)s)")
    p.add_argument("--num-gauss-init", type=int, default=0,
                   help="Gaussians to start from; 0 means num-gauss / 2 (default %(default)s)")
    p.add_argument("--num-iters", type=int, default=20, help="EM iterations (default %(default)s)")
    p.add_argument("--num-frames", type=int, default=500000,
                   help="random subset of frames to train on (default %(default)s)")
    p.add_argument("--min-count", type=float, default=10.0,
                   help="Gaussians with less occupancy keep their parameters (default %(default)s)")
    p.add_argument("--var-floor-factor", type=float, default=0.001,
                   help="variance floor relative to the global variance (default %(default)s)")
    p.add_argument("--norm-vars", default="false", choices=["true", "false"], help="CMVN variance normalisation")
    p.add_argument("--delta-order", type=int, default=2, help="delta order (default %(default)s)")
    p.add_argument("--cmvn-mode", default="speaker", choices=["speaker", "utterance", "none"],
                   help="CMVN: the data dir's per-speaker stats, per utterance, or none (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    p.add_argument("data_dir")
    p.add_argument("out_dubm")
    return p


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = get_parser().parse_args(argv)
    norm_vars = args.norm_vars == "true"
    out_dir = Path(args.out_dubm).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    ivector.write_feature_opts(out_dir, norm_vars, args.delta_order, args.cmvn_mode)
    skipped = []
    speed = ivector.Throughput()
    blocks = []
    try:
        for _, x in ivector.iter_features(args.data_dir, norm_vars, args.delta_order, skipped=skipped,
                                          cmvn_mode=args.cmvn_mode):
            blocks.append(x.astype(np.float32))
            speed.add(x.shape[0])
    except (ValueError, KeyError, FileNotFoundError) as e:
        logger.error("%s", e)
        return 1
    if not blocks:
        logger.error("%s: no utterance has features", args.data_dir)
        return 1
    frames = np.concatenate(blocks)
    logger.info("read %s; %d skipped", speed, len(skipped))
    rng = np.random.default_rng(args.seed)
    if frames.shape[0] > args.num_frames:
        frames = frames[np.sort(rng.choice(frames.shape[0], args.num_frames, replace=False))]
    logger.info("initialising %d Gaussians from %d frames of dim %d", args.num_gauss, *frames.shape)
    try:
        gmm, _ = ivector.init_diag_ubm(frames, args.num_gauss, args.num_gauss_init, args.num_iters,
                                       var_floor_factor=args.var_floor_factor, min_count=args.min_count,
                                       seed=args.seed)
    except ValueError as e:
        logger.error("%s", e)
        return 1
    gmm.save(args.out_dubm)
    logger.info("wrote %s (%d Gaussians)", args.out_dubm, gmm.num_gauss)
    return 0


if __name__ == "__main__":
    sys.exit(main())
