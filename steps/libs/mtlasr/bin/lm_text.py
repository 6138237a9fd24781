"""Turn a Kaldi text file into LM training text (one sentence of units per line).

Usage:
  python3 -m mtlasr.bin.lm_text --unit word|char --space-symbol S [--vocab F --oov-word W] \\
      <kaldi-text> <out-text>

  e.g.: python3 -m mtlasr.bin.lm_text --unit word --space-symbol "<space>" \\
          --vocab data/lang/words.txt --oov-word "<unk>" data/train/text exp/lm/train.txt

The first field of each line (the utterance id) is dropped. With --unit char
each word becomes its characters, words separated by the space symbol. With
--vocab, units outside it are counted (and logged); with --oov-word too they
are replaced by it. See mtlasr.lm.
"""

import logging
import sys

from mtlasr.cli import make_parser, program
from mtlasr.lm import add_text_options, text_options, write_lm_text

logger = logging.getLogger("lm_text")


def get_parser():
    p = make_parser(__doc__)
    add_text_options(p)
    p.add_argument("text", help="Kaldi text file")
    p.add_argument("out", help="LM training text")
    return p


def run(args):
    c = write_lm_text(args.text, args.out, **text_options(args))
    logger.info("wrote %s: %d sentences, %d %s tokens", args.out, c.utts, c.tokens, args.unit)
    if args.vocab:
        logger.info("training text against %s: %s", args.vocab, c.summary(args.oov_word))
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
