"""Train a sentencepiece model (BPE or unigram) on the transcripts of a Kaldi text file, as CTC units.

Usage:
  python3 -m mtlasr.bin.train_sentencepiece [options] <text> <dir>

  e.g.: python3 -m mtlasr.bin.train_sentencepiece --model-type unigram --vocab-size 300 \\
          --seed 1 --character-coverage 1.0 data/train/text exp/sp_unigram300

Writes, each atomically:
  <dir>/sp.model     the sentencepiece model (id 0 = <blk>, 1 = <unk>; mtlasr.pieces)
  <dir>/sp.vocab     piece<TAB>score per line, in id order
  <dir>/units.txt    '<piece> <id>' per line: the CTC output units, <blk> = 0
  <dir>/text         <text> with each transcript as pieces (utt p1 p2 ...), e.g.
                     for a piece n-gram LM (steps/train_lm.sh <dir>/text ...)
  <dir>/lexicon.txt  each word of <text> and its pieces (word decoding with a word LM)

Training is single-threaded and seeded: the same text and options give
byte-identical files. Turn text into unit ids and back with
mtlasr.pieces.PieceCoder(<dir>/sp.model).encode / .decode. The defaults of
the options live in steps/train_sentencepiece.sh.
"""

import logging
import sys
from pathlib import Path

from mtlasr.cli import make_parser, program
from mtlasr import pieces
from mtlasr.units import write_units
from mtlasr.datadir import atomic_open

logger = logging.getLogger("train_sentencepiece")


def get_parser():
    p = make_parser(__doc__, "text", "dir")
    p.add_argument("--model-type", choices=pieces.MODEL_TYPES, required=True)
    p.add_argument("--vocab-size", type=int, required=True, help="units, <blk> and <unk> included")
    p.add_argument("--seed", type=int, required=True, help="seed of sentencepiece's random generator")
    p.add_argument("--character-coverage", type=float, required=True,
                   help="share of the characters kept in the alphabet (1.0: all)")
    return p


def run(args):
    sentences = pieces.read_transcripts(args.text)
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    model = pieces.train_model(sentences, args.model_type, args.vocab_size, args.seed, args.character_coverage)
    with atomic_open(out / "sp.model", "wb") as f:
        f.write(model)
    coder = pieces.PieceCoder(out / "sp.model")
    pieces.write_vocab(coder, out / "sp.vocab")
    # units.txt (<blk> = 0, then the pieces in id order) and unit_type "piece", as mtlasr.units reads them
    write_units(coder.units()[1:], "piece", out)
    n_utt, n_piece = pieces.encode_text_file(coder, args.text, out / "text")
    words = sorted({w for s in sentences for w in s.split()})
    lexicon = pieces.word_lexicon(coder, words)
    with atomic_open(out / "lexicon.txt") as f:
        for w in words:
            f.write(" ".join([w] + lexicon[w]) + "\n")
    n_words = sum(len(s.split()) for s in sentences)
    unk = sum(p == pieces.UNK for ps in lexicon.values() for p in ps)
    logger.info("%s model, %d units (<blk> = 0) from %d transcripts of %s: %d pieces for %d words "
                "(%.2f per word, %d distinct words, %d <unk> pieces in the lexicon)", args.model_type,
                coder.vocab_size, n_utt, args.text, n_piece, n_words, n_piece / max(n_words, 1), len(words), unk)
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
