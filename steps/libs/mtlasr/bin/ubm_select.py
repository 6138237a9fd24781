"""Gaussian selection with a diagonal UBM and, optionally, full-UBM posteriors.

Usage:
  python3 -m mtlasr.bin.ubm_select [options] <diag-ubm> <data-dir> <out.npz>

  e.g.: python3 -m mtlasr.bin.ubm_select --num-gselect 30 exp/diag_ubm/0.dubm \\
          data/train/split4/1 exp/diag_ubm/gselect.1.npz
        python3 -m mtlasr.bin.ubm_select --num-gselect 20 --full-ubm exp/ie/final.ubm \\
          --min-post 0.025 exp/ie/final.dubm data/train/split4/1 exp/ie/post.1.npz

Writes, per utterance, the --num-gselect best Gaussians of each frame under
the diagonal UBM (Kaldi's gmm-gselect); with --full-ubm also their
posteriors under the full UBM, pruned below --min-post and scaled by
--posterior-scale (Kaldi's fgmm-global-gselect-to-post | scale-post).
Features are prepared as recorded in the diagonal UBM's directory
(``cmvn_opts``, ``delta_order``). Utterances with no frames are skipped
with a warning.
"""

import argparse
import logging
import sys
from pathlib import Path

from mtlasr import ivector

logger = logging.getLogger("ubm_select")


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-gselect", type=int, default=20, help="Gaussians kept per frame (default %(default)s)")
    p.add_argument("--full-ubm", default=None, help="full-covariance UBM: also write its posteriors")
    p.add_argument("--min-post", type=float, default=0.025, help="posterior pruning threshold (default %(default)s)")
    p.add_argument("--posterior-scale", type=float, default=1.0, help="posterior scale (default %(default)s)")
    p.add_argument("diag_ubm")
    p.add_argument("data_dir")
    p.add_argument("out_npz")
    return p


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = get_parser().parse_args(argv)
    dubm = ivector.DiagGmm.load(args.diag_ubm)
    fgmm = ivector.FullGmm.load(args.full_ubm) if args.full_ubm else None
    norm_vars, delta_order = ivector.read_feature_opts(Path(args.diag_ubm).parent)
    cmvn_mode = ivector.read_cmvn_mode(Path(args.diag_ubm).parent)
    sel, skipped = {}, []
    speed = ivector.Throughput()
    try:
        for utt, x in ivector.iter_features(args.data_dir, norm_vars, delta_order, dim=dubm.dim, skipped=skipped,
                                            cmvn_mode=cmvn_mode):
            if fgmm is None:
                sel[utt] = (dubm.gselect(x, args.num_gselect), None)
            else:
                sel[utt] = ivector.posteriors(fgmm, dubm, x, args.num_gselect, args.min_post, args.posterior_scale)
            speed.add(x.shape[0])
    except (ValueError, KeyError, FileNotFoundError) as e:
        logger.error("%s", e)
        return 1
    ivector.save_selection(args.out_npz, sel)
    logger.info("%s; %d skipped", speed, len(skipped))
    return 0


if __name__ == "__main__":
    sys.exit(main())
