"""Sum i-vector extractor accumulators of split jobs and re-estimate the extractor.

Usage:
  python3 -m mtlasr.bin.ivector_est [options] <extractor-in> <extractor-out> <acc> [<acc> ...]

  e.g.: python3 -m mtlasr.bin.ivector_est --variance-floor-factor 0.1 --iteration 3 \\
          --objf-file exp/ivector_extractor/objf exp/ivector_extractor/3.ie exp/ivector_extractor/4.ie \\
          exp/ivector_extractor/acc.3.*

Kaldi's ivector-extractor-sum-accs + ivector-extractor-est: projections,
covariances (floored at --variance-floor-factor times their average) and the
prior, re-parametrised to be standard again (see
mtlasr.ivector.IvectorExtractorAcc.update). Logs ``iteration N:
log-likelihood per frame X (change +Y)`` (the data's marginal log-likelihood
under <extractor-in>) and, with --objf-file, records ``N X`` there.
--variance-floor-factor has no default here
(steps/ivector/train_ivector_extractor.sh holds it); --gaussian-min-count
and --update-prior default to the constants of
mtlasr.ivector.extractor_acc.
"""

import logging
import sys

from mtlasr.ivector import IvectorExtractor, IvectorExtractorAcc, extractor_acc
from mtlasr.cli import make_parser, program
from mtlasr.ivector.jobs import add_estimation_args, estimate

logger = logging.getLogger("ivector_est")


def get_parser():
    p = make_parser(__doc__)
    p.add_argument("--variance-floor-factor", type=float, required=True,
                   help="covariance floor relative to the average covariance")
    p.add_argument("--gaussian-min-count", type=float, default=extractor_acc.GAUSSIAN_MIN_COUNT,
                   help="Gaussians with a smaller count keep their covariance (default %(default)s)")
    p.add_argument("--update-prior", default=str(extractor_acc.UPDATE_PRIOR).lower(), choices=["true", "false"],
                   help="re-estimate the prior (default %(default)s)")
    add_estimation_args(p, "extractor")
    return p


def run(args):
    ie = IvectorExtractor.load(args.extractor_in)

    def update(acc):
        return acc.update(ie, args.variance_floor_factor, args.gaussian_min_count, args.update_prior == "true")

    new, acc, line = estimate(ie, args.accs, IvectorExtractorAcc.load, update, args.iteration, args.objf_file)
    logger.info("%s, over %d frames of %d utterances", line, acc.frames, acc.count)
    new.save(args.extractor_out)
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
