"""Convert an ARPA language model into G.fst for a lang dir (via kaldilm).

Usage:
  python3 -m mtlasr.bin.arpa_to_g [--oov-policy skip|error] <lm.arpa[.gz]> <words.txt> <G.fst>

  e.g.: python3 -m mtlasr.bin.arpa_to_g data/local/lm/phone_bg.arpa \\
          data/lang_test_bg/words.txt data/lang_test_bg/G.fst

Backoff arcs carry the disambiguation symbol #0; <s> and </s> become
epsilons (Kaldi's arpa2fst --disambig-symbol=#0 --read-symbol-table).

ARPA words that are not in words.txt: kaldilm, like Kaldi's arpa2fst with
a symbol table, skips every n-gram that holds one of them, so their
probability mass is missing from G (G is then not stochastic: its paths sum
to less than 1). This script counts them first and logs how many words and
n-grams per order are affected; with --oov-policy error (default skip) it
stops instead. Map such words to the lang's OOV word when training the LM
(steps/train_lm.sh --vocab words.txt --oov-word "<unk>") to keep their mass.

Runs in its own process: importing kaldilm before kaldifst or
kaldi_hmm_gmm in one process hangs.
"""

import logging
import os
import sys

from mtlasr.cli import make_parser, program
from mtlasr.datadir import read_symbol_table
from mtlasr.lm import arpa_vs_words, format_counts, plain_arpa, scan_arpa

logger = logging.getLogger("arpa_to_g")


def get_parser():
    p = make_parser(__doc__)
    p.add_argument("--oov-policy", choices=["skip", "error"], default="skip",
                   help="ARPA words not in words.txt: skip their n-grams, or stop (default %(default)s)")
    p.add_argument("arpa", help="ARPA file, gzipped if it ends in .gz")
    p.add_argument("words", help="the lang dir's words.txt")
    p.add_argument("g_fst", help="output G.fst (OpenFst binary)")
    return p


def run(args):
    for f in (args.arpa, args.words):
        if not os.path.isfile(f):
            raise FileNotFoundError(f"{f} does not exist")
    words = read_symbol_table(args.words)
    if "#0" not in words:
        raise ValueError(f"{args.words}: no #0 (the backoff disambiguation symbol)")
    info = scan_arpa(args.arpa, set(words))
    logger.info("%s: %s", args.arpa, format_counts(info.counts))
    msg, has_oov = arpa_vs_words(info, args.words)
    if has_oov and args.oov_policy == "error":
        logger.error("%s (--oov-policy error)", msg)
        return 1
    if has_oov:
        logger.warning("%s; kaldilm skips these n-grams, so G lacks their probability mass", msg)
    else:
        logger.info("%s", msg)
    import kaldilm  # after the checks above; never in a process that imports kaldifst

    out_dir = os.path.dirname(os.path.abspath(args.g_fst))
    tmp = args.g_fst + ".tmp"
    with plain_arpa(args.arpa, out_dir) as arpa:
        kaldilm.arpa2fst(input_arpa=arpa, output_fst=tmp, disambig_symbol="#0",
                         read_symbol_table=args.words, ilabel_sort=True, max_arpa_warnings=10)
    if not os.path.isfile(tmp) or os.path.getsize(tmp) == 0:
        logger.error("kaldilm wrote no %s", tmp)
        return 1
    os.replace(tmp, args.g_fst)
    logger.info("wrote %s", args.g_fst)
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
