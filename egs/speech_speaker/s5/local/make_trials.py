#!/usr/bin/env python3
"""Make a speaker-verification trial list from a data dir: random same- and different-speaker pairs.

Usage:
  local/make_trials.py [options] <data-dir> <out-trials>

  e.g.: local/make_trials.py data/test_clean data/test_clean/trials
        local/make_trials.py --num-targets 5000 --num-nontargets 5000 --seed 3 data/dev_clean data/dev_clean/trials
        local/make_trials.py --min-utts-per-speaker 2 data/voxceleb2_test data/voxceleb2_test/trials

For corpora without an official trial list (LibriSpeech, a VoxCeleb2 part).
Reads ``<data-dir>/utt2spk`` and writes ``<out-trials>`` (under a temporary
name, moved into place) in the toolkit's trial format, one trial a line:

  <label> <utt1> <utt2>     label 1: the same speaker (target), 0: not

``utt1`` sorts before ``utt2`` (C order) and the lines are sorted, so the
list is a set of distinct unordered pairs of distinct utterances.

Sampling: ``--num-targets`` pairs drawn uniformly from all same-speaker
pairs (so a speaker's share grows with its number of pairs) and
``--num-nontargets`` uniformly from all different-speaker pairs, without
repetition, by a random generator seeded with ``--seed`` (numpy PCG64): the
same data dir, numbers and seed give the same list. A speaker with one
utterance gives no target trial but takes part in non-target ones. Where
fewer distinct pairs exist than asked for, all of them are taken, with a
warning.

Errors (exit status 1, one line): no utt2spk (or a malformed one, naming
its line); no speaker with 2 or more utterances (no target trial can be
made); a single speaker (no non-target trial); with
``--min-utts-per-speaker K``, a speaker with fewer than K utterances
(naming it; default K=1, no check); a number of trials below 1.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "steps" / "libs"))
from mtlasr.cli import make_parser, program  # noqa: E402
from mtlasr.datadir import atomic_open, read_table  # noqa: E402

logger = logging.getLogger("make_trials")

# Up to this many candidate pairs are listed and sampled from exactly;
# beyond, pairs are drawn at random and repeats rejected.
ENUMERATE_MAX = 2_000_000
Pair = Tuple[int, int]


def _sample(rng: np.random.Generator, total: int, n: int, enumerate_all: Callable[[], List[Pair]],
            draw: Callable[[int], np.ndarray]) -> Set[Pair]:
    """``n`` distinct pairs (indices i < j) out of ``total`` candidates:
    exactly from the full list when it is small or ``n`` near ``total``,
    else by rejection from ``draw(k)``, which gives a ``(k, 2)`` array of
    candidate pairs (rows with i == j or of the wrong kind as ``-1``)."""
    if total <= ENUMERATE_MAX or 2 * n >= total:
        cands = enumerate_all()
        assert len(cands) == total, (len(cands), total)
        return {cands[k] for k in rng.choice(total, size=n, replace=False)}
    got: Set[Pair] = set()
    while len(got) < n:
        for i, j in draw(2 * (n - len(got)) + 16).tolist():
            if i >= 0 and (i, j) not in got:
                got.add((i, j))
                if len(got) == n:
                    break
    return got


def make_trials(utt2spk: Dict[str, str], num_targets: int, num_nontargets: int, seed: int,
                min_utts: int = 1, where: str = "utt2spk") -> List[Tuple[int, str, str]]:
    """Random trials ``(label, utt1, utt2)`` (label 1 target, 0 non-target), sorted.

    Args:
      utt2spk: utterance -> speaker.
      num_targets / num_nontargets: how many of each (at most all there are).
      seed: of the random generator.
      min_utts: every speaker must have at least this many utterances.
      where: the utt2spk file, for messages.

    Raises:
      ValueError: a speaker with fewer than ``min_utts`` utterances (naming
        it), no speaker with 2+ utterances, a single speaker, or a number
        below 1.
    """
    if num_targets < 1 or num_nontargets < 1:
        raise ValueError(f"--num-targets and --num-nontargets must be at least 1 (got {num_targets}, "
                         f"{num_nontargets}): a trial list needs both kinds")
    utts = sorted(utt2spk, key=lambda u: u.encode("utf-8"))
    spk2idx: Dict[str, List[int]] = {}
    for i, u in enumerate(utts):
        spk2idx.setdefault(utt2spk[u], []).append(i)
    spks = sorted(spk2idx, key=lambda s: s.encode("utf-8"))
    few = [s for s in spks if len(spk2idx[s]) < min_utts]
    if few:
        raise ValueError(f"{where}: {len(few)} speaker(s) have fewer than {min_utts} utterances (--min-utts-per-"
                         f"speaker {min_utts}): " + ", ".join(f"{s} ({len(spk2idx[s])})" for s in few[:10])
                         + (" ..." if len(few) > 10 else ""))
    sizes = np.array([len(spk2idx[s]) for s in spks], dtype=np.int64)
    pairs_per_spk = sizes * (sizes - 1) // 2
    n_target = int(pairs_per_spk.sum())
    n_all = len(utts) * (len(utts) - 1) // 2
    n_nontarget = n_all - n_target
    if n_target == 0:
        raise ValueError(f"{where}: no speaker has 2 or more utterances ({len(spks)} speakers, {len(utts)} "
                         f"utterances): no same-speaker (target) trial can be made")
    if n_nontarget == 0:
        raise ValueError(f"{where}: a single speaker ({spks[0]}): no different-speaker (non-target) trial can be "
                         f"made")
    for what, asked, there in (("target", num_targets, n_target), ("non-target", num_nontargets, n_nontarget)):
        if asked > there:
            logger.warning("%s: %d %s trials asked for, but only %d distinct pairs exist: taking them all",
                           where, asked, what, there)
    num_targets, num_nontargets = min(num_targets, n_target), min(num_nontargets, n_nontarget)
    spk_of = np.empty(len(utts), dtype=np.int64)
    for k, s in enumerate(spks):
        spk_of[spk2idx[s]] = k
    rng = np.random.default_rng(seed)

    def all_targets() -> List[Pair]:
        return [(a, b) for s in spks for x, a in enumerate(spk2idx[s]) for b in spk2idx[s][x + 1:]]

    by_spk = np.concatenate([spk2idx[s] for s in spks])      # utterance indices grouped by speaker
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])

    def draw_targets(k: int) -> np.ndarray:
        who = rng.choice(len(spks), size=k, p=pairs_per_spk / n_target)
        n = sizes[who]
        a = rng.integers(0, n)
        b = rng.integers(0, n - 1)
        b = b + (b >= a)                        # a second, different utterance of the speaker
        i, j = by_spk[start[who] + a], by_spk[start[who] + b]
        return np.stack([np.minimum(i, j), np.maximum(i, j)], axis=1)

    def all_nontargets() -> List[Pair]:
        return [(i, j) for i in range(len(utts)) for j in range(i + 1, len(utts)) if spk_of[i] != spk_of[j]]

    def draw_nontargets(k: int) -> np.ndarray:
        i = rng.integers(0, len(utts), size=k)
        j = rng.integers(0, len(utts), size=k)
        p = np.stack([np.minimum(i, j), np.maximum(i, j)], axis=1)
        p[spk_of[i] == spk_of[j]] = -1
        return p

    targets = _sample(rng, n_target, num_targets, all_targets, draw_targets)
    nontargets = _sample(rng, n_nontarget, num_nontargets, all_nontargets, draw_nontargets)
    trials = [(1, utts[i], utts[j]) for i, j in targets] + [(0, utts[i], utts[j]) for i, j in nontargets]
    trials.sort(key=lambda t: (t[1].encode("utf-8"), t[2].encode("utf-8")))
    return trials


def get_parser():
    p = make_parser(__doc__)
    p.add_argument("--num-targets", type=int, default=1000, metavar="N",
                   help="same-speaker trials (default: %(default)s)")
    p.add_argument("--num-nontargets", type=int, default=1000, metavar="M",
                   help="different-speaker trials (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default: %(default)s)")
    p.add_argument("--min-utts-per-speaker", type=int, default=1, metavar="K",
                   help="error if a speaker has fewer than K utterances (default: %(default)s, no check)")
    p.add_argument("data_dir", help="a data dir with utt2spk")
    p.add_argument("out_trials", help="the trial list to write")
    return p


def run(args) -> int:
    utt2spk_file = Path(args.data_dir) / "utt2spk"
    if not utt2spk_file.is_file():
        raise FileNotFoundError(f"{utt2spk_file}: no such file ({args.data_dir} is not a data dir)")
    utt2spk = read_table(utt2spk_file)
    trials = make_trials(utt2spk, args.num_targets, args.num_nontargets, args.seed, args.min_utts_per_speaker,
                         str(utt2spk_file))
    with atomic_open(args.out_trials) as f:
        for label, a, b in trials:
            f.write(f"{label} {a} {b}\n")
    n1 = sum(t[0] for t in trials)
    logger.info("%s: %d trials (%d target, %d non-target) from %d utterances of %d speakers", args.out_trials,
                len(trials), n1, len(trials) - n1, len(utt2spk), len(set(utt2spk.values())))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
