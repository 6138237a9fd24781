"""Convert a UBM between diagonal and full covariances.

Usage:
  python3 -m mtlasr.bin.ubm_convert <in-ubm> <out-ubm>

  e.g.: python3 -m mtlasr.bin.ubm_convert exp/full_ubm/final.dubm exp/full_ubm/0.ubm
        python3 -m mtlasr.bin.ubm_convert exp/ivector_extractor/final.ubm exp/ivector_extractor/final.dubm

A diagonal UBM becomes a full one with the same weights, means and
(diagonal) covariances (Kaldi's gmm-global-to-fgmm); a full UBM becomes a
diagonal one keeping the diagonals of its covariances (fgmm-global-to-gmm).
"""

import logging
import sys

from mtlasr import ivector

from mtlasr.cli import make_parser

logger = logging.getLogger("ubm_convert")


def get_parser():
    p = make_parser(__doc__, "in_ubm", "out_ubm")
    return p


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = get_parser().parse_args(argv)
    gmm = ivector.load_gmm(args.in_ubm)
    if isinstance(gmm, ivector.DiagGmm):
        out, what = ivector.FullGmm.from_diag(gmm), "full"
    else:
        out, what = gmm.to_diag(), "diagonal"
    out.save(args.out_ubm)
    logger.info("wrote %s (%s covariances, %d Gaussians, dim %d)", args.out_ubm, what, out.num_gauss, out.dim)
    return 0


if __name__ == "__main__":
    sys.exit(main())
