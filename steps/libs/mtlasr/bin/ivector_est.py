"""Sum i-vector extractor accumulators of split jobs and re-estimate the extractor.

Usage:
  python3 -m mtlasr.bin.ivector_est [options] <extractor-in> <extractor-out> <acc> [<acc> ...]

  e.g.: python3 -m mtlasr.bin.ivector_est --iteration 3 --objf-file exp/ivector_extractor/objf \\
          exp/ivector_extractor/3.ie exp/ivector_extractor/4.ie exp/ivector_extractor/acc.3.*

Kaldi's ivector-extractor-sum-accs + ivector-extractor-est: projections,
covariances (floored at --variance-floor-factor times their average) and the
prior, re-parametrised to be standard again (see
mtlasr.ivector.IvectorExtractorAcc.update). Logs ``iteration N:
log-likelihood per frame X (change +Y)`` (the data's marginal log-likelihood
under <extractor-in>) and, with --objf-file, records ``N X`` there.
"""

import argparse
import logging
import sys

from mtlasr import ivector

logger = logging.getLogger("ivector_est")


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variance-floor-factor", type=float, default=0.1,
                   help="covariance floor relative to the average covariance (default %(default)s)")
    p.add_argument("--gaussian-min-count", type=float, default=100.0,
                   help="Gaussians with a smaller count keep their covariance (default %(default)s)")
    p.add_argument("--update-prior", default="true", choices=["true", "false"],
                   help="re-estimate the prior (default %(default)s)")
    p.add_argument("--iteration", type=int, default=0, help="iteration number, for the log (default %(default)s)")
    p.add_argument("--objf-file", default=None, help="summary file of 'iteration objf' lines to update")
    p.add_argument("extractor_in")
    p.add_argument("extractor_out")
    p.add_argument("accs", nargs="+")
    return p


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = get_parser().parse_args(argv)
    ie = ivector.IvectorExtractor.load(args.extractor_in)
    acc = ivector.IvectorExtractorAcc.load(args.accs[0])
    for path in args.accs[1:]:
        acc.add(ivector.IvectorExtractorAcc.load(path))
    if acc.Y.shape != ie.M.shape:
        logger.error("accumulators of shape %s do not fit the extractor %s", acc.Y.shape, ie.M.shape)
        return 1
    objf = acc.objf_per_frame
    new = acc.update(ie, args.variance_floor_factor, args.gaussian_min_count, args.update_prior == "true")
    prev = ivector.write_objf(args.objf_file, args.iteration, objf) if args.objf_file else None
    logger.info("%s, over %d frames of %d utterances", ivector.objf_line(args.iteration, objf, prev),
                acc.frames, acc.count)
    new.save(args.extractor_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
