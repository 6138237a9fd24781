"""Extract i-vectors (per utterance, and optionally every few frames) for one job.

Usage:
  python3 -m mtlasr.bin.extract_ivectors --online <true|false> --ivector-period <n> [options] \\
      <extractor-dir> <data-dir> <out-dir> <job>

  e.g.: python3 -m mtlasr.bin.extract_ivectors --online true --ivector-period 10 exp/ivector_extractor \\
          data/dev/split2/1 exp/ivectors_dev 1

Reads from <extractor-dir>: final.ie, final.ubm, final.dubm, cmvn_opts,
delta_order and posterior.conf (--num-gselect, --min-post,
--posterior-scale, as used in training), so the features and posteriors
are those of training (see mtlasr.ivector.jobs.extract). Writes in <out-dir>:
  ivectors.<job>.ark/.scp        (D,) float32 per utterance: the posterior
                                 mean of w minus the prior offset (Kaldi's
                                 ivector-extract)
  ivector_online.<job>.ark/.scp  with --online true: (ceil(T/period), D)
                                 per utterance, row k from frames
                                 0..k*period (Kaldi's --ivector-period)
  skipped.<job>                  "<utt> <reason>" for utterances skipped
                                 (no frames); may be empty
Non-finite features are an error naming the utterance. Logs frames per
second. --online and --ivector-period have no defaults here
(steps/ivector/extract_ivectors.sh holds them).

--backend torch computes posteriors, statistics and i-vectors with PyTorch
on --device (auto: a GPU if there is one); on CPU the i-vectors equal
numpy's to about 1e-15 (see mtlasr.ivector.torch_backend). --num-threads
is torch's thread count, capped at the cores the job was given
(mtlasr.threads).
"""

import logging
import sys
from pathlib import Path

import numpy as np

from mtlasr.datadir import atomic_open
from mtlasr.features import FeatureReader
from mtlasr.ivector import DiagGmm, FullGmm, IvectorExtractor, write_ark_scp
from mtlasr.cli import make_parser, program
from mtlasr.ivector.backend import add_backend_args, backend_from_args
from mtlasr.ivector.jobs import BATCH_SIZE, PosteriorOpts, extract

logger = logging.getLogger("extract_ivectors")


def get_parser():
    p = make_parser(__doc__, "extractor_dir", "data_dir", "out_dir", "job")
    p.add_argument("--online", required=True, choices=["true", "false"],
                   help="also write i-vectors every --ivector-period frames")
    p.add_argument("--ivector-period", type=int, required=True, help="frames between online i-vectors")
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="utterances per batched solve (default %(default)s)")
    add_backend_args(p)
    return p


def run(args):
    src, out, job = Path(args.extractor_dir), Path(args.out_dir), args.job
    backend = backend_from_args(args)
    ie = IvectorExtractor.load(src / "final.ie")
    fgmm = FullGmm.load(src / "final.ubm")
    dubm = DiagGmm.load(src / "final.dubm")
    opts = PosteriorOpts.read(src)
    if args.ivector_period < 1:
        raise ValueError("--ivector-period must be >= 1")
    period = args.ivector_period if args.online == "true" else None
    feats = FeatureReader.for_model(src, args.data_dir, dim=ie.feat_dim)
    logger.info("backend: %s", backend)
    utt_ivectors, online_ivectors = extract(ie, fgmm, dubm, feats, opts, period, args.batch_size, backend)
    with atomic_open(out / f"skipped.{job}") as fh:
        for utt, reason in feats.skipped:
            fh.write(f"{utt} {reason}\n")
    if period is not None:
        write_ark_scp(out / f"ivector_online.{job}.ark", out / f"ivector_online.{job}.scp", online_ivectors.items())
    write_ark_scp(out / f"ivectors.{job}.ark", out / f"ivectors.{job}.scp", utt_ivectors.items())
    norms = [float(np.linalg.norm(v)) for v in utt_ivectors.values()]
    logger.info("%s; mean i-vector norm %.3f", feats, np.mean(norms) if norms else 0.0)
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
