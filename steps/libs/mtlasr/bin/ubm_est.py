"""Sum UBM accumulators of split jobs and re-estimate the UBM (one EM M-step).

Usage:
  python3 -m mtlasr.bin.ubm_est [options] <model-in> <model-out> <acc> [<acc> ...]

  e.g.: python3 -m mtlasr.bin.ubm_est --iteration 2 --objf-file exp/diag_ubm/objf \\
          exp/diag_ubm/2.dubm exp/diag_ubm/3.dubm exp/diag_ubm/2.1.acc exp/diag_ubm/2.2.acc

Diagonal or full covariance, following the model (Kaldi's gmm-global-est /
fgmm-global-est). Logs ``iteration N: log-likelihood per frame X (change
+Y)`` (the data's log-likelihood under <model-in>) and, with --objf-file,
records ``N X`` there.
"""

import argparse
import logging
import sys

from mtlasr import ivector

logger = logging.getLogger("ubm_est")


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--min-gaussian-weight", type=float, default=0.0,
                   help="remove Gaussians of smaller weight; 0 keeps all (default %(default)s)")
    p.add_argument("--var-floor-factor", type=float, default=0.001,
                   help="(co)variance floor relative to the global (co)variance (default %(default)s)")
    p.add_argument("--min-count", type=float, default=10.0,
                   help="Gaussians with less occupancy keep their parameters (default %(default)s)")
    p.add_argument("--iteration", type=int, default=0, help="iteration number, for the log (default %(default)s)")
    p.add_argument("--objf-file", default=None, help="summary file of 'iteration objf' lines to update")
    p.add_argument("model_in")
    p.add_argument("model_out")
    p.add_argument("accs", nargs="+")
    return p


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = get_parser().parse_args(argv)
    gmm = ivector.load_gmm(args.model_in)
    acc = ivector.load_acc(args.accs[0])
    for path in args.accs[1:]:
        acc.add(ivector.load_acc(path))
    if acc.occ.shape[0] != gmm.num_gauss:
        logger.error("accumulators have %d Gaussians, the model %d", acc.occ.shape[0], gmm.num_gauss)
        return 1
    new, objf = acc.update(gmm, args.min_gaussian_weight, var_floor_factor=args.var_floor_factor,
                           min_count=args.min_count)
    prev = ivector.write_objf(args.objf_file, args.iteration, objf) if args.objf_file else None
    logger.info("%s, over %d frames, %d Gaussians", ivector.objf_line(args.iteration, objf, prev),
                acc.frames, new.num_gauss)
    new.save(args.model_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
