"""Forced alignment of a data dir with a GMM-HMM (Kaldi's gmm-align-compiled).

Usage:
  python3 -m mtlasr.bin.align_gmm [options] <lang-dir> <model-dir> <data-dir> <ali.gz>

  e.g.: python3 -m mtlasr.bin.align_gmm data/lang exp/mono data/train/split4/1 exp/mono_ali/ali.1.gz

Features as the model was trained (``cmvn_opts``, ``delta_order`` in
<model-dir>). Utterances that fail to align, or have too few frames for
their transcript, are skipped with a warning naming them (as in Kaldi).
"""

import logging
import sys

from mtlasr.cli import make_parser, program
from mtlasr import gmm
from mtlasr.datadir import DataDir
from mtlasr.features import load_features, read_feature_opts
from mtlasr.lang import Lang

logger = logging.getLogger("align_gmm")


def get_parser():
    p = make_parser(__doc__, "lang_dir", "model_dir", "data_dir", "ali")
    # steps/align_si.sh passes every option: their defaults live there.
    p.add_argument("--beam", type=float, required=True, help="alignment beam")
    p.add_argument("--retry-beam", type=float, required=True, help="beam of the second try when the first fails")
    p.add_argument("--boost-silence", type=float, required=True, help="factor on the silence weights while aligning")
    return p


def run(args):
    lang = Lang(args.lang_dir)
    tm, tree, am = gmm.load_model(f"{args.model_dir}/final.mdl")
    am = gmm.boost_silence(am, tm, lang.silence_ids, args.boost_silence)
    norm_vars, delta_order = read_feature_opts(args.model_dir)
    data = DataDir(args.data_dir)
    text = data.text()
    feats = load_features(data.path, norm_vars=norm_vars, delta_order=delta_order)
    compiler = gmm.graph_compiler(tm, tree, lang.lexicon_fst())
    ali, failed, like, frames = {}, 0, 0.0, 0
    for utt, x in feats.items():
        if utt not in text or not text[utt]:
            logger.warning("utterance %s: no transcript; skipped", utt)
            failed += 1
            continue
        g = compiler.compile_graph_from_text(lang.words_to_ids(text[utt], utt))
        r = gmm.align(am, tm, g, x, args.beam, args.retry_beam, utt=utt)
        if r is None:
            logger.warning("utterance %s: no alignment (too short for its %d phones, or beam); skipped",
                           utt, len(text[utt]))
            failed += 1
            continue
        ali[utt], like, frames = r[0], like + r[1], frames + x.shape[0]
    if lang.oov.oov_tokens:
        logger.info("%s", lang.oov_summary())
    if not ali:
        logger.error("no utterance of %s could be aligned", args.data_dir)
        return 1
    gmm.write_ali(args.ali, ali)
    logger.info("aligned %d utterances, %d failed; avg log-like per frame %.3f", len(ali), failed,
                like / max(frames, 1))
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
