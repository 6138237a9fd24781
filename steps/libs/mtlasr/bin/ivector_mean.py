"""Speaker i-vectors: the mean of each speaker's utterance i-vectors.

Usage:
  python3 -m mtlasr.bin.ivector_mean <spk2utt> <ivectors.scp> <spk_ivectors.ark> <spk_ivectors.scp> <num_utts.ark>

  e.g.: python3 -m mtlasr.bin.ivector_mean data/dev/spk2utt exp/ivectors_dev/ivectors.scp \\
          exp/ivectors_dev/spk_ivectors.ark exp/ivectors_dev/spk_ivectors.scp exp/ivectors_dev/num_utts.ark

Kaldi's ivector-mean: (D,) float32 per speaker; a speaker with a single
utterance gets that utterance's i-vector. Utterances without an i-vector
(skipped at extraction) are left out; a speaker with none gets no entry
(warning). <num_utts.ark> is a text table "<spk> <count>" (Kaldi ark,t of
int32).
"""

import argparse
import logging
import sys

from mtlasr import ivector
from mtlasr.datadir import atomic_open, read_table

logger = logging.getLogger("ivector_mean")


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spk2utt")
    p.add_argument("ivectors_scp")
    p.add_argument("out_ark")
    p.add_argument("out_scp")
    p.add_argument("num_utts")
    return p


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = get_parser().parse_args(argv)
    import kaldiio

    spk2utt = {k: v.split() for k, v in read_table(args.spk2utt).items()}
    vecs = {k: v for k, v in kaldiio.load_scp(args.ivectors_scp).items()}
    means, counts = ivector.speaker_means(vecs, spk2utt)
    ivector.write_ark_scp(args.out_ark, args.out_scp, means.items())
    with atomic_open(args.num_utts) as fh:
        for spk, n in counts.items():
            fh.write(f"{spk} {n}\n")
    logger.info("%d speaker i-vectors from %d utterance i-vectors (%d speakers without any)",
                len(means), len(vecs), len(spk2utt) - len(means))
    return 0


if __name__ == "__main__":
    sys.exit(main())
