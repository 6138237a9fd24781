"""Initialise an i-vector extractor from a full-covariance UBM.

Usage:
  python3 -m mtlasr.bin.ivector_init [options] <full-ubm> <out.ie>

  e.g.: python3 -m mtlasr.bin.ivector_init --ivector-dim 100 exp/ivector_extractor/final.ubm \\
          exp/ivector_extractor/0.ie

Kaldi's ivector-extractor-init: column 0 of each projection M_c is the UBM
mean divided by --prior-offset, the other columns small random directions;
Sigma_c is the UBM covariance (see mtlasr.ivector.IvectorExtractor.from_full_gmm).
"""

import argparse
import logging
import sys

from mtlasr import ivector

logger = logging.getLogger("ivector_init")


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ivector-dim", type=int, default=100, help="i-vector dimension (default %(default)s)")
    p.add_argument("--prior-offset", type=float, default=100.0, help="prior offset (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    p.add_argument("full_ubm")
    p.add_argument("out_ie")
    return p


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = get_parser().parse_args(argv)
    fgmm = ivector.FullGmm.load(args.full_ubm)
    ie = ivector.IvectorExtractor.from_full_gmm(fgmm, args.ivector_dim, args.prior_offset, args.seed)
    ie.save(args.out_ie)
    logger.info("wrote %s: %d Gaussians, feature dim %d, i-vector dim %d", args.out_ie,
                ie.num_gauss, ie.feat_dim, ie.ivector_dim)
    return 0


if __name__ == "__main__":
    sys.exit(main())
