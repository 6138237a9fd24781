"""Build a lang dir (symbol tables, topology, L.fst, L_disambig.fst) from a dict dir.

Usage:
  python3 -m mtlasr.bin.prepare_lang --sil-prob P --num-sil-states N --num-nonsil-states N \\
      [--tmp-dir DIR] <dict-dir> <oov-word> <lang-dir>

  e.g.: python3 -m mtlasr.bin.prepare_lang --sil-prob 0.5 --num-sil-states 5 \\
          --num-nonsil-states 3 data/local/dict "<unk>" data/lang

The dict dir holds lexicon.txt or lexiconp.txt, silence_phones.txt,
nonsilence_phones.txt and optional_silence.txt, as in Kaldi; see
mtlasr.lang for what is checked and what the lang dir holds. The options
have no defaults here: utils/prepare_lang.sh holds them.
"""

import logging
import sys

from mtlasr.cli import make_parser, program
from mtlasr.lang import prepare_lang

logger = logging.getLogger("prepare_lang")


def get_parser():
    p = make_parser(__doc__, "dict_dir", "oov_word", "lang_dir")
    p.add_argument("--sil-prob", type=float, required=True,
                   help="probability of optional silence between words (0: none)")
    p.add_argument("--num-sil-states", type=int, required=True, help="HMM states of silence phones")
    p.add_argument("--num-nonsil-states", type=int, required=True, help="HMM states of other phones")
    p.add_argument("--tmp-dir", help="where to keep the intermediate lexicons")
    return p


def run(args):
    n = prepare_lang(args.dict_dir, args.lang_dir, args.oov_word, sil_prob=args.sil_prob,
                     num_sil_states=args.num_sil_states, num_nonsil_states=args.num_nonsil_states,
                     tmp_dir=args.tmp_dir)
    logger.info("wrote %s: %d phones, %d words, %d pronunciations, disambiguation symbols #0..#%d, "
                "sil-prob %g, OOV word %s", args.lang_dir, n["phones"], n["words"], n["prons"],
                n["disambig"], args.sil_prob, args.oov_word)
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
