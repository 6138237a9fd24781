#!/usr/bin/env python3
"""Peak memory of LSTM-HMM training against corpus size, training data held
in memory (train.data memory) or read from the arks when needed
(train.data stream), and the feature read throughput of each.

Usage: local/data_memory.py [options] <train-data> <ali-dir> <work-dir>   (run in the recipe dir)

  e.g.: local/data_memory.py --copies "1 4 16" data/train exp/mono_ali exp/data_memory

For each number of copies N, <work-dir>/x<N> gets a data dir and an
alignment dir holding the training set N times under new utterance and
speaker ids (c<k>-<id>): the scp index grows N times, the arks are shared.
One epoch of python3 -m mtlasr.bin.train_nnet (--config, one thread, no
validation set) runs on it in a child process per mode, whose peak
resident memory is taken from the kernel (wait4's ru_maxrss). Where the
whole set fits in one stream buffer the two modes must train the same
weights, and that is checked. Last, the throughput of reading the
features of the largest set: all in feats.scp order as memory mode loads
them, and in a shuffled order as streaming reads them (with the open-ark
cache, and reopening the ark for every utterance); the arks are in the
page cache by then, so this is the cost of parsing, CMVN and copying,
not of the disk. Prints a Markdown table.
"""

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

logger = logging.getLogger("data_memory")


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("train_data")
    p.add_argument("ali_dir")
    p.add_argument("work_dir")
    p.add_argument("--copies", default="1 4 16", help="corpus sizes, in copies of <train-data> (default %(default)s)")
    p.add_argument("--config", default="conf/lstm_tiny.yaml", help="network config (default %(default)s)")
    p.add_argument("--buffer-frames", type=int, default=30000,
                   help="train.buffer_frames of the stream runs (default %(default)s)")
    return p


def make_copies(data, ali_dir, out, n):
    """<out>/data and <out>/ali: ``n`` copies of a data dir (feats.scp,
    cmvn.scp, utt2spk, spk2utt, utt2num_frames) and its alignments."""
    from mtlasr import gmm
    from mtlasr.datadir import read_table, write_table

    data, out = Path(data), Path(out)
    tables = {f: read_table(data / f) for f in ("feats.scp", "utt2num_frames", "utt2spk", "cmvn.scp")}
    ali = gmm.read_ali_dir(ali_dir)
    new = {f: {} for f in tables}
    new_ali = {}
    for k in range(n):
        c = f"c{k:03d}-"
        for f in ("feats.scp", "utt2num_frames"):
            new[f].update({c + u: v for u, v in tables[f].items()})
        new["utt2spk"].update({c + u: c + s for u, s in tables["utt2spk"].items()})
        new["cmvn.scp"].update({c + s: v for s, v in tables["cmvn.scp"].items()})
        new_ali.update({c + u: a for u, a in ali.items()})
    for f, t in new.items():
        write_table(out / "data" / f, t)
    spk2utt = {}
    for u, s in new["utt2spk"].items():
        spk2utt.setdefault(s, []).append(u)
    write_table(out / "data" / "spk2utt", spk2utt)
    (out / "ali").mkdir(parents=True, exist_ok=True)
    gmm.write_ali(out / "ali" / "ali.1.gz", new_ali)
    mdl = out / "ali" / "final.mdl"
    if not mdl.exists():
        mdl.symlink_to(Path(ali_dir, "final.mdl").resolve())
    return out / "data", out / "ali", sum(int(v) for v in new["utt2num_frames"].values()), len(new_ali)


def train_once(config, data, ali, exp, sets):
    """One epoch of train_nnet in a child process: (peak RSS MB, data load s,
    epoch s, frames/s).

    Raises: RuntimeError naming the log when the training fails."""
    exp.mkdir(parents=True, exist_ok=True)
    log = exp / "train.log"
    cmd = [sys.executable, "-m", "mtlasr.bin.train_nnet", "--config", config, "--device", "cpu", "--force",
           "--set", "train.max_epochs=1", "--set", "train.num_threads=1", *sum((["--set", s] for s in sets), []),
           str(data), str(ali), str(exp)]
    with open(log, "w") as f:
        child = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({child.returncode}); see {log}")
    text = log.read_text()
    load = float(re.search(r"data loaded in ([\d.]+) s", text).group(1))
    hist = json.loads((exp / "history.json").read_text())[-1]
    return usage.ru_maxrss / 1024, load, hist["seconds"], hist["frames_per_second"]


def same_weights(a, b):
    import torch

    wa = torch.load(a, weights_only=False)["model"]
    wb = torch.load(b, weights_only=False)["model"]
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def read_throughput(data, fc):
    """Frames per second read (CMVN and deltas included): memory mode's
    load in feats.scp order; streaming's reads in a shuffled order, with the
    open-ark cache and reopening the ark for every utterance."""
    from mtlasr.features import FeatureTable, load_features
    from mtlasr.nnet.stream import FeatureSource

    out = {}
    t0 = time.time()
    feats = load_features(data, norm_vars=fc["norm_vars"], delta_order=fc["delta_order"], cmvn=fc["cmvn"])
    out["memory: load_features, feats.scp order"] = sum(x.shape[0] for x in feats.values()) / (time.time() - t0)
    del feats
    src = FeatureSource([data], fc["norm_vars"], fc["delta_order"], fc["cmvn"])
    order = list(src)
    np.random.default_rng(0).shuffle(order)
    t0 = time.time()
    n = sum(src[u].shape[0] for u in order)
    out["stream: shuffled, open arks kept (LRU)"] = n / (time.time() - t0)
    table = FeatureTable(data, fc["norm_vars"], fc["delta_order"], fc["cmvn"])
    t0 = time.time()
    n = sum(table.prepare(u, table.raw(u)).shape[0] for u in order)
    out["stream: shuffled, ark reopened per utterance"] = n / (time.time() - t0)
    return out


def main(argv=None):
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from mtlasr.nnet.config import load_config

    fc = load_config(args.config)["features"]
    work = Path(args.work_dir)
    rows = []
    for n in [int(x) for x in args.copies.split()]:
        data, ali, frames, utts = make_copies(args.train_data, args.ali_dir, work / f"x{n}", n)
        res = {}
        for mode in ("memory", "stream"):
            logger.info("%dx (%d utterances, %d frames): training one epoch, data in %s", n, utts, frames, mode)
            res[mode] = train_once(args.config, data, ali, work / f"x{n}" / f"exp_{mode}",
                                   [f"train.data={mode}", f"train.buffer_frames={args.buffer_frames}"])
        same = ""
        if frames <= args.buffer_frames:
            same = "yes" if same_weights(*(work / f"x{n}" / f"exp_{m}" / "final.pt" for m in ("memory", "stream"))) \
                else "NO"
        rows.append((n, utts, frames, res, same))
    print("| copies | utterances | frames (10 ms) | peak RSS, memory (MB) | peak RSS, stream (MB) | "
          "load s, memory / stream | epoch s, memory / stream | same weights |")
    print("|---|---|---|---|---|---|---|---|")
    for n, utts, frames, res, same in rows:
        m, s = res["memory"], res["stream"]
        print(f"| {n}x | {utts} | {frames} | {m[0]:.0f} | {s[0]:.0f} | {m[1]:.1f} / {s[1]:.1f} | "
              f"{m[2]:.1f} / {s[2]:.1f} | {same or '(several buffers)'} |")
    print()
    print(f"Feature reading, {rows[-1][0]}x ({rows[-1][2]} frames):")
    print()
    print("| reader | frames/s |")
    print("|---|---|")
    for what, fps in read_throughput(work / f"x{rows[-1][0]}" / "data", fc).items():
        print(f"| {what} | {fps:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
