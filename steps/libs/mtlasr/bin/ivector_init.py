"""Initialise an i-vector extractor from a full-covariance UBM.

Usage:
  python3 -m mtlasr.bin.ivector_init --ivector-dim <D> --prior-offset <p> --seed <n> <full-ubm> <out.ie>

  e.g.: python3 -m mtlasr.bin.ivector_init --ivector-dim 100 --prior-offset 100 --seed 0 \\
          exp/ivector_extractor/final.ubm exp/ivector_extractor/0.ie

Kaldi's ivector-extractor-init: column 0 of each projection M_c is the UBM
mean divided by --prior-offset, the other columns small random directions;
Sigma_c is the UBM covariance (see
mtlasr.ivector.IvectorExtractor.from_full_gmm). The options have no
defaults here: steps/ivector/train_ivector_extractor.sh holds them.
"""

import logging
import sys

from mtlasr.ivector import FullGmm, IvectorExtractor
from mtlasr.cli import make_parser, program

logger = logging.getLogger("ivector_init")


def get_parser():
    p = make_parser(__doc__, "full_ubm", "out_ie")
    p.add_argument("--ivector-dim", type=int, required=True, metavar="D", help="i-vector dimension")
    p.add_argument("--prior-offset", type=float, required=True, help="prior offset")
    p.add_argument("--seed", type=int, required=True, help="random seed")
    return p


def run(args):
    ie = IvectorExtractor.from_full_gmm(FullGmm.load(args.full_ubm), args.ivector_dim, args.prior_offset, args.seed)
    ie.save(args.out_ie)
    logger.info("wrote %s: %d Gaussians, feature dim %d, i-vector dim %d", args.out_ie,
                ie.num_gauss, ie.feat_dim, ie.ivector_dim)
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
