"""Train a monophone GMM-HMM with Viterbi re-estimation (Kaldi's mono schedule).

Usage:
  python3 -m mtlasr.bin.train_mono [options] <data-dir> <lang-dir> <exp-dir>

  e.g.: python3 -m mtlasr.bin.train_mono --num-iters 40 --totgauss 1000 \\
          data/train data/lang exp/mono

Features: speaker CMVN (means only unless --norm-vars) plus deltas of
--delta-order. Writes ``<exp-dir>/final.mdl`` (pickled kaldi-hmm-gmm model),
``cmvn_opts`` and ``delta_order`` (read back by later steps), ``ali.1.gz``
(the last training alignment, Kaldi format) and a per-iteration log on
stderr. Mixing up is seeded (--seed): two runs with the same inputs and
options give byte-identical final.mdl and ali.1.gz. Utterances that cannot be aligned are skipped with a warning, as
Kaldi does; an utterance with too few frames for its transcript is skipped
the same way.
"""

import logging
import sys
import time
from pathlib import Path

import numpy as np

from mtlasr.cli import make_parser, program
from mtlasr import gmm
from mtlasr.datadir import DataDir, atomic_open
from mtlasr.features import load_features, write_feature_opts
from mtlasr.lang import Lang

logger = logging.getLogger("train_mono")


def get_parser():
    p = make_parser(__doc__, "data_dir", "lang_dir", "exp_dir")
    # Options steps/train_mono.sh passes have their defaults there, not here.
    p.add_argument("--num-iters", type=int, required=True, help="re-estimation passes")
    p.add_argument("--max-iter-inc", type=int, required=True, help="Gaussians grow until this pass")
    p.add_argument("--totgauss", type=int, required=True, help="target total Gaussians")
    p.add_argument("--boost-silence", type=float, required=True, help="silence weight factor while aligning")
    p.add_argument("--norm-vars", required=True, choices=["true", "false"], help="CMVN variance normalisation")
    p.add_argument("--delta-order", type=int, required=True, help="delta order")
    p.add_argument("--seed", type=int, required=True,
                   help="seed of the mix-up perturbations (the same seed gives the same model)")
    p.add_argument("--power", type=float, default=0.25, help="mix-up allocation exponent (default %(default)s)")
    p.add_argument("--realign-iters", default="1 2 3 4 5 6 7 8 9 10 12 14 16 18 20 23 26 29 32 35 38",
                   help="passes that realign (default %(default)s)")
    p.add_argument("--beam", type=float, default=6.0, help="alignment beam for the first pass (default %(default)s)")
    p.add_argument("--later-beam", type=float, default=10.0, help="alignment beam afterwards (default %(default)s)")
    p.add_argument("--retry-beam", type=float, default=40.0, help="retry beam (default %(default)s)")
    return p


def run(args):
    exp = Path(args.exp_dir)
    exp.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    lang = Lang(args.lang_dir)
    data = DataDir(args.data_dir)
    text = data.text()
    norm_vars = args.norm_vars == "true"
    feats = load_features(data.path, norm_vars=norm_vars, delta_order=args.delta_order)
    utts = [u for u in feats if u in text]
    missing = len(feats) - len(utts)
    if missing:
        logger.warning("%d utterances have features but no transcript; skipped", missing)
    logger.info("%d utterances, %d frames, feature dim %d", len(utts),
                sum(feats[u].shape[0] for u in utts), feats[utts[0]].shape[1])

    topo = lang.topology()
    tm, tree, am = gmm.init_mono(topo, (feats[u] for u in utts))
    compiler = gmm.graph_compiler(tm, tree, lang.lexicon_fst())
    graphs, ali = {}, {}
    for u in utts:
        graphs[u] = compiler.compile_graph_from_text(lang.words_to_ids(text[u], u))
        try:
            ali[u] = gmm.equal_align(graphs[u], feats[u].shape[0], u)
        except ValueError as e:
            logger.warning("%s; skipped", e)
    if lang.oov.oov_tokens:
        logger.info("%s", lang.oov_summary())
    num_gauss = am.num_gauss
    inc_gauss = max(0, (args.totgauss - num_gauss) // args.max_iter_inc)
    realign = {int(x) for x in args.realign_iters.split()}

    rng = np.random.default_rng(args.seed)
    acc = gmm.Accumulator(am, tm)
    for u in ali:
        acc.add(feats[u], ali[u])
    like, frames = gmm.update(am, tm, acc, num_gauss, power=args.power, rng=rng)
    logger.info("pass 0 (equal alignment): avg log-like %.4f over %d frames, %d Gaussians",
                like, frames, am.num_gauss)

    beam = args.beam
    for it in range(1, args.num_iters):
        if it in realign:
            boosted = gmm.boost_silence(am, tm, lang.silence_ids, args.boost_silence)
            ali, failed = {}, 0
            for u in utts:
                r = gmm.align(boosted, tm, graphs[u], feats[u], beam, args.retry_beam, utt=u)
                if r is None:
                    failed += 1
                    logger.warning("utterance %s: no alignment even with retry beam; skipped", u)
                    continue
                ali[u] = r[0]
            beam = args.later_beam
            if not ali:
                logger.error("no utterance could be aligned")
                return 1
            logger.info("pass %d: realigned %d utterances (%d failed)", it, len(ali), failed)
        acc = gmm.Accumulator(am, tm)
        for u in ali:
            acc.add(feats[u], ali[u])
        if it <= args.max_iter_inc:
            num_gauss += inc_gauss
        like, frames = gmm.update(am, tm, acc, num_gauss, power=args.power, rng=rng)
        logger.info("pass %d: avg log-like %.4f over %d frames, %d Gaussians", it, like, frames, am.num_gauss)

    gmm.save_model(exp / "final.mdl", tm, tree, am)
    gmm.write_ali(exp / "ali.1.gz", ali)
    write_feature_opts(exp, args.norm_vars == "true", args.delta_order)
    with atomic_open(exp / "num_jobs") as f:
        f.write("1\n")
    logger.info("trained %d pdfs, %d Gaussians in %.1f s", tm.num_pdfs, am.num_gauss, time.time() - t0)
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
