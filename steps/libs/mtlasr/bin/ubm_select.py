"""Gaussian selection with a diagonal UBM and, optionally, full-UBM posteriors.

Usage:
  python3 -m mtlasr.bin.ubm_select [options] <diag-ubm> <data-dir> <out.npz>

  e.g.: python3 -m mtlasr.bin.ubm_select --num-gselect 30 exp/diag_ubm/0.dubm \\
          data/train/split4/1 exp/diag_ubm/gselect.1.npz
        python3 -m mtlasr.bin.ubm_select --num-gselect 20 --full-ubm exp/ie/final.ubm \\
          --min-post 0.025 --posterior-scale 1.0 exp/ie/final.dubm data/train/split4/1 exp/ie/post.1.npz

Writes, per utterance, the --num-gselect best Gaussians of each frame under
the diagonal UBM (Kaldi's gmm-gselect); with --full-ubm also their
posteriors under the full UBM, pruned below --min-post and scaled by
--posterior-scale (Kaldi's fgmm-global-gselect-to-post | scale-post).
Features are prepared as recorded in the diagonal UBM's directory
(``cmvn_opts``, ``delta_order``). Utterances with no frames are skipped
with a warning.

The options have no defaults here: the steps that call this program
(steps/ivector/train_*.sh) hold them; --min-post and --posterior-scale are
required with --full-ubm.

--backend torch computes the selection and posteriors with PyTorch on
--device (auto: a GPU if there is one), equal to numpy's to about 1e-15
before the float32 rounding of the file (see mtlasr.ivector.torch_backend);
--num-threads is torch's thread count, capped at the cores the job was
given (mtlasr.threads).
"""

import logging
import sys
from pathlib import Path

from mtlasr.features import FeatureReader
from mtlasr.ivector import DiagGmm, FullGmm, save_selection
from mtlasr.cli import make_parser, program
from mtlasr.ivector.backend import add_backend_args, backend_from_args
from mtlasr.ivector.jobs import select_gaussians

logger = logging.getLogger("ubm_select")


def get_parser():
    p = make_parser(__doc__, "diag_ubm", "data_dir", "out_npz")
    p.add_argument("--num-gselect", type=int, required=True, help="Gaussians kept per frame")
    p.add_argument("--full-ubm", default=None, help="full-covariance UBM: also write its posteriors")
    p.add_argument("--min-post", type=float, default=None, help="posterior pruning threshold (with --full-ubm)")
    p.add_argument("--posterior-scale", type=float, default=None, help="posterior scale (with --full-ubm)")
    add_backend_args(p)
    return p


def run(args):
    if args.full_ubm and (args.min_post is None or args.posterior_scale is None):
        raise ValueError("--full-ubm needs --min-post and --posterior-scale")
    backend = backend_from_args(args)
    dubm = DiagGmm.load(args.diag_ubm)
    fgmm = FullGmm.load(args.full_ubm) if args.full_ubm else None
    feats = FeatureReader.for_model(Path(args.diag_ubm).parent, args.data_dir, dim=dubm.dim)
    sel = select_gaussians(dubm, feats, args.num_gselect, fgmm, args.min_post, args.posterior_scale, backend)
    save_selection(args.out_npz, sel)
    logger.info("%s", feats)
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
