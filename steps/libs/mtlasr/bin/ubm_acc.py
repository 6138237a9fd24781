"""Accumulate EM statistics of a diagonal or full-covariance UBM on a data dir.

Usage:
  python3 -m mtlasr.bin.ubm_acc [--gselect <gselect.npz>] <ubm> <data-dir> <out.acc>

  e.g.: python3 -m mtlasr.bin.ubm_acc --gselect exp/diag_ubm/gselect.1.npz \\
          exp/diag_ubm/2.dubm data/train/split4/1 exp/diag_ubm/2.1.acc

The model may be diagonal (.dubm) or full (.ubm); posteriors are restricted
to the Gaussians of --gselect (from mtlasr.bin.ubm_select) when given, as
Kaldi's gmm-global-acc-stats / fgmm-global-acc-stats --gselect. Features
are prepared as recorded in the model's directory. Logs the
log-likelihood per frame and frames per second.
"""

import argparse
import logging
import sys
from pathlib import Path

from mtlasr import ivector

logger = logging.getLogger("ubm_acc")


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gselect", default=None, help="Gaussian selection (.npz from ubm_select)")
    p.add_argument("model")
    p.add_argument("data_dir")
    p.add_argument("out_acc")
    return p


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = get_parser().parse_args(argv)
    gmm = ivector.load_gmm(args.model)
    norm_vars, delta_order = ivector.read_feature_opts(Path(args.model).parent)
    cmvn_mode = ivector.read_cmvn_mode(Path(args.model).parent)
    gsel = ivector.load_selection(args.gselect) if args.gselect else None
    acc = ivector.make_acc(gmm)
    skipped = []
    speed = ivector.Throughput()
    try:
        for utt, x in ivector.iter_features(args.data_dir, norm_vars, delta_order, dim=gmm.dim, skipped=skipped,
                                            cmvn_mode=cmvn_mode):
            g = None
            if gsel is not None:
                if utt not in gsel:
                    raise KeyError(f"{args.gselect}: no Gaussian selection for utterance {utt}")
                g = gsel[utt][0]
                if g.shape[0] != x.shape[0]:
                    raise ValueError(f"utterance {utt}: {x.shape[0]} frames but Gaussian selection for "
                                     f"{g.shape[0]} ({args.gselect})")
            acc.accumulate(gmm, x, g)
            speed.add(x.shape[0])
    except (ValueError, KeyError, FileNotFoundError) as e:
        logger.error("%s", e)
        return 1
    acc.save(args.out_acc)
    logger.info("%s; %d skipped; log-likelihood per frame %.4f", speed, len(skipped), acc.objf_per_frame)
    return 0


if __name__ == "__main__":
    sys.exit(main())
