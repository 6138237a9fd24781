"""Speaker-verification check of i-vectors or network embeddings: cosine
scoring of every pair of utterances of the evaluation sets (or of a trial
list), equal error rate.

Usage:
  python3 -m mtlasr.bin.ivector_eer [options] <out-dir> <data-dir> <ivector-dir> [<data-dir> <ivector-dir> ...]

  e.g.: python3 -m mtlasr.bin.ivector_eer --center exp/ivectors_train exp/ivectors_eer \\
          data/dev exp/ivectors_dev data/test exp/ivectors_test
        python3 -m mtlasr.bin.ivector_eer --trials data/test/trials exp/w2v2/eer_test data/test exp/w2v2/emb_test

An embedding dir holds ivectors.scp (i-vectors) or embeddings.scp
(mtlasr.bin.extract_embeddings).

Trials are all unordered pairs of distinct utterances pooled over the given
sets (speakers held out from training, if the sets are dev and test): target
when both have the same speaker; or, with --trials, the trials of that list
(``1 utt1 utt2`` / ``0 utt1 utt2``, VoxCeleb's order, or Kaldi's ``utt1
utt2 target|nontarget``; mtlasr.speaker.read_trials), every utterance of
which must have an embedding. Scores are cosine similarities after
subtracting the mean i-vector of --center (the training set's i-vectors; no
LDA or PLDA). Writes <out-dir>/eer (one line), <out-dir>/scores
(``utt1 utt2 score target|nontarget``) and <out-dir>/scores.png (score
histograms of target and non-target trials). Chance is an EER of 50%.
"""

import logging
import sys
from pathlib import Path

from mtlasr.cli import make_parser, program

logger = logging.getLogger("ivector_eer")


def get_parser():
    p = make_parser(__doc__, "out_dir")
    p.add_argument("--center", default=None, metavar="IVECTOR-DIR",
                   help="subtract the mean of this dir's ivectors.scp before scoring (default: the "
                        "mean of the evaluation i-vectors)")
    p.add_argument("--trials", default=None, metavar="FILE", help="score these trials (default: all pairs)")
    p.add_argument("pairs", nargs="+", metavar="DATA-DIR IVECTOR-DIR")
    return p


def read_vectors(ivector_dir):
    import kaldiio
    import numpy as np

    from mtlasr.datadir import read_table

    d = Path(ivector_dir)
    scp = next((d / n for n in ("ivectors.scp", "embeddings.scp") if (d / n).is_file()), None)
    if scp is None:
        raise FileNotFoundError(f"{d}: no ivectors.scp or embeddings.scp")
    table = read_table(scp)
    return {u: np.asarray(kaldiio.load_mat(v), dtype=np.float64) for u, v in table.items()}


def plot_scores(scores, target, eer, threshold, path):
    from mtlasr.plot import save, subplots
    import numpy as np

    fig, ax = subplots(figsize=(6, 3.5))
    bins = np.linspace(scores.min(), scores.max(), 40)
    ax.hist(scores[~target], bins=bins, alpha=0.6, density=True, label=f"non-target ({int((~target).sum())})")
    ax.hist(scores[target], bins=bins, alpha=0.6, density=True, label=f"target ({int(target.sum())})")
    ax.axvline(threshold, color="k", ls="--", label=f"EER threshold (EER {100 * eer:.1f}%)")
    ax.set_xlabel("cosine score")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    save(fig, path)


def run(args):
    import numpy as np

    from mtlasr.datadir import atomic_open, read_table
    from mtlasr.speaker import all_pair_trials, compute_eer, cosine_scores, read_trials, trial_table

    if len(args.pairs) % 2:
        logger.error("expected pairs of <data-dir> <ivector-dir>, got %d paths", len(args.pairs))
        return 1
    vectors, utt2spk = {}, {}
    for data, ivdir in zip(args.pairs[::2], args.pairs[1::2]):
        u2s = read_table(Path(data) / "utt2spk")
        vecs = read_vectors(ivdir)
        missing = [u for u in vecs if u not in u2s]
        if missing:
            raise KeyError(f"{ivdir}: utterance {missing[0]} has an embedding but is not in {data}/utt2spk")
        vectors.update(vecs)
        utt2spk.update(u2s)
    utts = sorted(vectors)
    x = np.stack([vectors[u] for u in utts])
    mean = (np.mean(list(read_vectors(args.center).values()), axis=0) if args.center else x.mean(0))
    if args.trials:
        pairs, target = read_trials(args.trials, set(vectors))
        index = {u: k for k, u in enumerate(utts)}
        i = np.array([index[a] for a, _ in pairs])
        j = np.array([index[b] for _, b in pairs])
        same = np.array([utt2spk[a] == utt2spk[b] for a, b in pairs])
        if not np.array_equal(same, target):
            bad = int(np.argmax(same != target))
            logger.warning("%s: %d trials disagree with utt2spk, e.g. %s %s (labelled %s)", args.trials,
                           int((same != target).sum()), pairs[bad][0], pairs[bad][1],
                           "target" if target[bad] else "nontarget")
    else:
        i, j, target = all_pair_trials(utts, utt2spk)
    scores = cosine_scores(x, x, mean)[i, j]
    eer, thr = compute_eer(scores, target)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    used = sorted({utts[k] for k in np.concatenate([i, j])})
    nspk = len({utt2spk[u] for u in used})
    line = (f"EER {100 * eer:.2f}% (cosine, centred on {args.center or 'the evaluation mean'}; "
            f"{len(used)} utterances of {nspk} speakers, {int(target.sum())} target and "
            f"{int((~target).sum())} non-target trials{' from ' + args.trials if args.trials else ''}; "
            f"chance 50%)")
    with atomic_open(out / "scores") as f:
        f.write("\n".join(trial_table(utts, i, j, scores, target)) + "\n")
    with atomic_open(out / "eer") as f:
        f.write(line + "\n")
    plot_scores(scores, target, eer, thr, out / "scores.png")
    logger.info("%s", line)
    print(line)
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
