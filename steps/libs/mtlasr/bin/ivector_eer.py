"""Speaker-verification check of i-vectors: cosine scoring of every pair of
utterances of the evaluation sets, equal error rate.

Usage:
  python3 -m mtlasr.bin.ivector_eer [options] <out-dir> <data-dir> <ivector-dir> [<data-dir> <ivector-dir> ...]

  e.g.: python3 -m mtlasr.bin.ivector_eer --center exp/ivectors_train exp/ivectors_eer \\
          data/dev exp/ivectors_dev data/test exp/ivectors_test

Trials are all unordered pairs of distinct utterances pooled over the given
sets (speakers held out from training, if the sets are dev and test): target
when both have the same speaker. Scores are cosine similarities after
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
    p.add_argument("pairs", nargs="+", metavar="DATA-DIR IVECTOR-DIR")
    return p


def read_vectors(ivector_dir):
    import kaldiio
    import numpy as np

    from mtlasr.datadir import read_table

    table = read_table(Path(ivector_dir) / "ivectors.scp")
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
    from mtlasr.speaker import all_pair_trials, compute_eer, cosine_scores, trial_table

    if len(args.pairs) % 2:
        logger.error("expected pairs of <data-dir> <ivector-dir>, got %d paths", len(args.pairs))
        return 1
    vectors, utt2spk = {}, {}
    for data, ivdir in zip(args.pairs[::2], args.pairs[1::2]):
        u2s = read_table(Path(data) / "utt2spk")
        vecs = read_vectors(ivdir)
        missing = [u for u in vecs if u not in u2s]
        if missing:
            raise KeyError(f"{ivdir}/ivectors.scp: utterance {missing[0]} is not in {data}/utt2spk")
        vectors.update(vecs)
        utt2spk.update(u2s)
    utts = sorted(vectors)
    x = np.stack([vectors[u] for u in utts])
    mean = (np.mean(list(read_vectors(args.center).values()), axis=0) if args.center else x.mean(0))
    i, j, target = all_pair_trials(utts, utt2spk)
    scores = cosine_scores(x, x, mean)[i, j]
    eer, thr = compute_eer(scores, target)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nspk = len({utt2spk[u] for u in utts})
    line = (f"EER {100 * eer:.2f}% (cosine, centred on {args.center or 'the evaluation mean'}; "
            f"{len(utts)} utterances of {nspk} speakers, {int(target.sum())} target and "
            f"{int((~target).sum())} non-target trials; chance 50%)")
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
