"""Make the unit table of a CTC model (phones or letters) from transcripts.

Usage:
  python3 -m mtlasr.bin.prepare_units [options] <text> [<text> ...] <lang-dir>

  e.g.: python3 -m mtlasr.bin.prepare_units --unit-type phone data/train/text data/lang_ctc
        python3 -m mtlasr.bin.prepare_units --unit-type letter data/train/text.words data/lang_char

Writes <lang-dir>/units.txt (``<blk> 0``, then the units of the texts in
sorted order), <lang-dir>/unit_type and <lang-dir>/unit_counts (``<unit>
<count>`` in the first text). Units of later texts (dev, test) that the first
lacks are an error naming the utterance, unless --allow-new (then they are
added and listed).

--lexicon-text FILE (letters only): also write <lang-dir>/lexicon.txt, the
spelling (``word l e t t e r s``) of every word of FILE (plain text, one
sentence per line, e.g. an LM's training text), sorted, for decoding with a
word LM (steps/decode_ctc.sh --lexicon). Words with a letter outside the
units are left out and counted in the log.
"""

import logging
import sys

from mtlasr.cli import make_parser, program

logger = logging.getLogger("prepare_units")


def get_parser():
    p = make_parser(__doc__)
    p.add_argument("texts", nargs="+")
    p.add_argument("lang_dir")
    p.add_argument("--unit-type", choices=("phone", "letter"), default="phone")
    p.add_argument("--space-symbol", default="<space>", help="word separator of letters (default %(default)s)")
    p.add_argument("--allow-new", action="store_true", help="add units seen only in later texts")
    p.add_argument("--lexicon-text", default=None,
                   help="letters: write lexicon.txt spelling the words of this plain text file")
    return p


def run(args):
    from pathlib import Path

    from mtlasr.datadir import atomic_open, read_table
    from mtlasr.units import make_units, split_units, write_units

    texts = args.texts
    if args.lexicon_text and args.unit_type != "letter":
        raise ValueError("--lexicon-text spells words in letters: it needs --unit-type letter")
    first = read_table(texts[0], allow_empty_value=True)
    if not first:
        raise ValueError(f"{texts[0]}: no transcripts")
    counts = make_units(first.values(), args.unit_type, args.space_symbol)
    units = list(counts)
    for t in texts[1:]:
        for utt, line in read_table(t, allow_empty_value=True).items():
            for u in split_units(line, args.unit_type, args.space_symbol):
                if u not in counts:
                    if not args.allow_new:
                        raise ValueError(f"{t}: utterance {utt}: unit {u!r} does not occur in {texts[0]} "
                                         f"(--allow-new adds it)")
                    counts[u] = 0
                    units.append(u)
                    logger.warning("%s: unit %r added (not in %s)", t, u, texts[0])
    units = sorted(units)
    write_units(units, args.unit_type, args.lang_dir, args.space_symbol)
    with atomic_open(Path(args.lang_dir) / "unit_counts") as f:
        for u in units:
            f.write(f"{u} {counts[u]}\n")
    logger.info("%s: %d %s units from %d utterances of %s", args.lang_dir, len(units), args.unit_type,
                len(first), texts[0])
    if args.lexicon_text:
        words = set()
        with open(args.lexicon_text, encoding="utf-8") as f:
            for line in f:
                words.update(line.split())
        known = set(units)
        kept = sorted(w for w in words if all(c in known for c in w) and w != args.space_symbol)
        if not kept:
            raise ValueError(f"{args.lexicon_text}: no word is spelt with the units of {texts[0]}")
        with atomic_open(Path(args.lang_dir) / "lexicon.txt") as f:
            for w in kept:
                f.write(w + " " + " ".join(w) + "\n")
        logger.info("%s/lexicon.txt: %d words of %s (%d left out: a letter outside the units)",
                    args.lang_dir, len(kept), args.lexicon_text, len(words) - len(kept))
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
