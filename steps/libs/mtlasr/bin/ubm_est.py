"""Sum UBM accumulators of split jobs and re-estimate the UBM (one EM M-step).

Usage:
  python3 -m mtlasr.bin.ubm_est [options] <model-in> <model-out> <acc> [<acc> ...]

  e.g.: python3 -m mtlasr.bin.ubm_est --iteration 2 --objf-file exp/diag_ubm/objf \\
          exp/diag_ubm/2.dubm exp/diag_ubm/3.dubm exp/diag_ubm/2.1.acc exp/diag_ubm/2.2.acc

Diagonal or full covariance, following the model (Kaldi's gmm-global-est /
fgmm-global-est; see mtlasr.ivector.ubm). Logs ``iteration N:
log-likelihood per frame X (change +Y)`` (the data's log-likelihood under
<model-in>) and, with --objf-file, records ``N X`` there.
--min-gaussian-weight is off (0) unless given (steps/ivector/train_diag_ubm.sh
gives it on the last iteration); --var-floor-factor and --min-count default
to the constants of mtlasr.ivector.ubm.
"""

import logging
import sys

from mtlasr.ivector import load_acc, load_gmm, ubm
from mtlasr.cli import make_parser, program
from mtlasr.ivector.jobs import add_estimation_args, estimate

logger = logging.getLogger("ubm_est")


def get_parser():
    p = make_parser(__doc__)
    p.add_argument("--min-gaussian-weight", type=float, default=0.0,
                   help="remove Gaussians of smaller weight; 0 keeps all (default %(default)s)")
    p.add_argument("--var-floor-factor", type=float, default=ubm.VAR_FLOOR_FACTOR,
                   help="(co)variance floor relative to the global (co)variance (default %(default)s)")
    p.add_argument("--min-count", type=float, default=ubm.MIN_COUNT,
                   help="Gaussians with less occupancy keep their parameters (default %(default)s)")
    add_estimation_args(p, "model")
    return p


def run(args):
    gmm = load_gmm(args.model_in)

    def update(acc):
        new, _ = acc.update(gmm, args.min_gaussian_weight, var_floor_factor=args.var_floor_factor,
                            min_count=args.min_count)
        return new

    new, acc, line = estimate(gmm, args.accs, load_acc, update, args.iteration, args.objf_file)
    logger.info("%s, over %d frames, %d Gaussians", line, acc.frames, new.num_gauss)
    new.save(args.model_out)
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
