"""Accumulate i-vector extractor EM statistics on a data dir.

Usage:
  python3 -m mtlasr.bin.ivector_acc [options] <extractor> <data-dir> <posteriors.npz> <out.acc>

  e.g.: python3 -m mtlasr.bin.ivector_acc exp/ivector_extractor/3.ie data/train/split4/1 \\
          exp/ivector_extractor/post.1.npz exp/ivector_extractor/acc.3.1

Kaldi's ivector-extractor-acc-stats: Baum-Welch statistics of each
utterance from the fixed UBM posteriors (mtlasr.bin.ubm_select --full-ubm),
the posterior of its i-vector, and the M-step statistics
(mtlasr.ivector.IvectorExtractorAcc), processed in batches of utterances
(see mtlasr.ivector.jobs.accumulate_extractor). Features are prepared as
recorded in the extractor's directory. Logs the log-likelihood per frame
(w integrated out) and frames per second.

--backend torch computes the statistics and the E-step with PyTorch on
--device (auto: a GPU if there is one), the zeroth- and second-order
statistics bit for bit as numpy's on CPU, the rest to about 1e-15 (see
mtlasr.ivector.torch_backend); --num-threads is torch's thread count,
capped at the cores the job was given (mtlasr.threads).
"""

import logging
import sys
from pathlib import Path

from mtlasr.features import FeatureReader
from mtlasr.ivector import IvectorExtractor, SelectionFile
from mtlasr.cli import make_parser, program
from mtlasr.ivector.backend import add_backend_args, backend_from_args
from mtlasr.ivector.jobs import BATCH_SIZE, accumulate_extractor, save_acc

logger = logging.getLogger("ivector_acc")


def get_parser():
    p = make_parser(__doc__, "extractor", "data_dir", "posteriors", "out_acc")
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="utterances per batch (default %(default)s)")
    add_backend_args(p)
    return p


def run(args):
    backend = backend_from_args(args)
    ie = IvectorExtractor.load(args.extractor)
    posts = SelectionFile(args.posteriors, posteriors=True)
    feats = FeatureReader.for_model(Path(args.extractor).parent, args.data_dir, dim=ie.feat_dim)
    logger.info("backend: %s", backend)
    save_acc(accumulate_extractor(ie, feats, posts, args.batch_size, backend), args.out_acc, feats, logger)
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
