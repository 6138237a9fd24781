"""Extract i-vectors (per utterance, and optionally every few frames) for one job.

Usage:
  python3 -m mtlasr.bin.extract_ivectors [options] <extractor-dir> <data-dir> <out-dir> <job>

  e.g.: python3 -m mtlasr.bin.extract_ivectors --online true exp/ivector_extractor \\
          data/dev/split2/1 exp/ivectors_dev 1

Reads from <extractor-dir>: final.ie, final.ubm, final.dubm, cmvn_opts,
delta_order and posterior.conf (--num-gselect, --min-post,
--posterior-scale, as used in training), so the features and posteriors
are those of training. Writes in <out-dir>:
  ivectors.<job>.ark/.scp        (D,) float32 per utterance: the posterior
                                 mean of w minus the prior offset (Kaldi's
                                 ivector-extract)
  ivector_online.<job>.ark/.scp  with --online true: (ceil(T/period), D)
                                 per utterance, row k from frames
                                 0..k*period (Kaldi's --ivector-period)
  skipped.<job>                  "<utt> <reason>" for utterances skipped
                                 (no frames); may be empty
Non-finite features are an error naming the utterance. Logs frames per
second.
"""

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from mtlasr import ivector
from mtlasr.datadir import atomic_open
from mtlasr.features import read_kaldi_conf

logger = logging.getLogger("extract_ivectors")


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--online", default="false", choices=["true", "false"],
                   help="also write i-vectors every --ivector-period frames (default %(default)s)")
    p.add_argument("--ivector-period", type=int, default=10, help="frames between online i-vectors (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=64, help="utterances per batched solve (default %(default)s)")
    p.add_argument("extractor_dir")
    p.add_argument("data_dir")
    p.add_argument("out_dir")
    p.add_argument("job")
    return p


def posterior_opts(extractor_dir):
    """(num_gselect, min_post, posterior_scale) from <extractor-dir>/posterior.conf."""
    conf = read_kaldi_conf(Path(extractor_dir) / "posterior.conf")
    return int(conf["num-gselect"]), float(conf["min-post"]), float(conf["posterior-scale"])


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = get_parser().parse_args(argv)
    src, out = Path(args.extractor_dir), Path(args.out_dir)
    ie = ivector.IvectorExtractor.load(src / "final.ie")
    fgmm = ivector.FullGmm.load(src / "final.ubm")
    dubm = ivector.DiagGmm.load(src / "final.dubm")
    norm_vars, delta_order = ivector.read_feature_opts(src)
    cmvn_mode = ivector.read_cmvn_mode(src)
    num_gselect, min_post, scale = posterior_opts(src)
    online = args.online == "true"
    if args.ivector_period < 1:
        logger.error("--ivector-period must be >= 1")
        return 1
    utt_ivectors, online_ivectors, skipped = {}, {}, []
    speed = ivector.Throughput()
    batch = []

    def flush():
        vecs = ie.extract(np.stack([b[1] for b in batch]), np.stack([b[2] for b in batch]))
        for (utt, _, _), v in zip(batch, vecs):
            utt_ivectors[utt] = v
        batch.clear()

    try:
        for utt, x in ivector.iter_features(args.data_dir, norm_vars, delta_order, dim=ie.feat_dim,
                                            skipped=skipped, cmvn_mode=cmvn_mode):
            idx, post = ivector.posteriors(fgmm, dubm, x, num_gselect, min_post, scale)
            gamma, f, _ = ivector.utterance_stats(x, idx, post, ie.num_gauss)
            batch.append((utt, gamma, f))
            if online:
                online_ivectors[utt] = ie.online_ivectors(x, idx, post, args.ivector_period)
            speed.add(x.shape[0])
            if len(batch) >= args.batch_size:
                flush()
        if batch:
            flush()
    except (ValueError, KeyError, FileNotFoundError) as e:
        logger.error("%s", e)
        return 1
    job = args.job
    with atomic_open(out / f"skipped.{job}") as fh:
        for utt, reason in skipped:
            fh.write(f"{utt} {reason}\n")
    if online:
        ivector.write_ark_scp(out / f"ivector_online.{job}.ark", out / f"ivector_online.{job}.scp",
                              online_ivectors.items())
    ivector.write_ark_scp(out / f"ivectors.{job}.ark", out / f"ivectors.{job}.scp", utt_ivectors.items())
    norms = [float(np.linalg.norm(v)) for v in utt_ivectors.values()]
    logger.info("%s; %d skipped; mean i-vector norm %.3f", speed, len(skipped), np.mean(norms) if norms else 0.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
