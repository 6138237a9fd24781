"""Accumulate EM statistics of a diagonal or full-covariance UBM on a data dir.

Usage:
  python3 -m mtlasr.bin.ubm_acc [--gselect <gselect.npz>] <ubm> <data-dir> <out.acc>

  e.g.: python3 -m mtlasr.bin.ubm_acc --gselect exp/diag_ubm/gselect.1.npz \\
          exp/diag_ubm/2.dubm data/train/split4/1 exp/diag_ubm/2.1.acc

The model may be diagonal (.dubm) or full (.ubm); posteriors are restricted
to the Gaussians of --gselect (from mtlasr.bin.ubm_select) when given, as
Kaldi's gmm-global-acc-stats / fgmm-global-acc-stats --gselect (see
mtlasr.ivector.jobs.accumulate_gmm). Features are prepared as recorded in
the model's directory. Logs the log-likelihood per frame and frames per
second.
"""

import logging
import sys
from pathlib import Path

from mtlasr.features import FeatureReader
from mtlasr.ivector import SelectionFile, load_gmm
from mtlasr.cli import make_parser, program
from mtlasr.ivector.jobs import accumulate_gmm, save_acc

logger = logging.getLogger("ubm_acc")


def get_parser():
    p = make_parser(__doc__, "model", "data_dir", "out_acc")
    p.add_argument("--gselect", default=None, help="Gaussian selection (.npz from ubm_select); default all Gaussians")
    return p


def run(args):
    gmm = load_gmm(args.model)
    gselect = SelectionFile(args.gselect) if args.gselect else None
    feats = FeatureReader.for_model(Path(args.model).parent, args.data_dir, dim=gmm.dim)
    save_acc(accumulate_gmm(gmm, feats, gselect), args.out_acc, feats, logger)
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
