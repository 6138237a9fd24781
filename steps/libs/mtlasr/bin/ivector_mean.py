"""Speaker i-vectors: the mean of each speaker's utterance i-vectors.

Usage:
  python3 -m mtlasr.bin.ivector_mean <spk2utt> <ivectors.scp> <spk_ivectors.ark> <spk_ivectors.scp> <num_utts.ark>

  e.g.: python3 -m mtlasr.bin.ivector_mean data/dev/spk2utt exp/ivectors_dev/ivectors.scp \\
          exp/ivectors_dev/spk_ivectors.ark exp/ivectors_dev/spk_ivectors.scp exp/ivectors_dev/num_utts.ark

Kaldi's ivector-mean (mtlasr.speaker.speaker_means): (D,) float32 per
speaker, in spk2utt order; a speaker with a single utterance gets that
utterance's i-vector. Utterances without an i-vector (skipped at
extraction) are left out; a speaker with none gets no entry (warning). An
i-vector of an utterance that is not in <spk2utt> is an error.
<num_utts.ark> is a text table "<spk> <count>" (Kaldi ark,t of int32).
"""

import logging
import sys

from mtlasr.datadir import atomic_open, read_table
from mtlasr.ivector import write_ark_scp
from mtlasr.cli import make_parser, program
from mtlasr.speaker import speaker_means

logger = logging.getLogger("ivector_mean")


def get_parser():
    p = make_parser(__doc__, "spk2utt", "ivectors_scp", "out_ark", "out_scp", "num_utts")
    return p


def run(args):
    import kaldiio

    spk2utt = {k: v.split() for k, v in read_table(args.spk2utt).items()}
    utt2spk = {u: s for s, utts in spk2utt.items() for u in utts}
    vecs = dict(kaldiio.load_scp(args.ivectors_scp).items())
    missing = [u for u in vecs if u not in utt2spk]
    if missing:
        raise ValueError(f"{args.ivectors_scp}: utterance {missing[0]} is not in {args.spk2utt}")
    means, counts = speaker_means(vecs, utt2spk, speakers=list(spk2utt))
    write_ark_scp(args.out_ark, args.out_scp, means.items())
    with atomic_open(args.num_utts) as fh:
        for spk, n in counts.items():
            fh.write(f"{spk} {n}\n")
    logger.info("%d speaker i-vectors from %d utterance i-vectors (%d speakers without any)",
                len(means), len(vecs), len(spk2utt) - len(means))
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
