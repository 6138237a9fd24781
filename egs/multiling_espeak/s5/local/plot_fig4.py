#!/usr/bin/env python3
"""Seed 004's Fig. 4: utterance representations of the conv front end
("feature transformation" layer), averaged over each utterance's frames and
projected on their first two principal components, coloured by language
(top row) and by speaker (bottom row), one column per system.

Usage:
  local/plot_fig4.py [options] <out.png> <data-dir> <name>=<exp-dir> [<name>=<exp-dir> ...]

  e.g.: local/plot_fig4.py exp/results/fig4.png data/test \\
          multi=exp/ctc_multi_s0 multi_lr=exp/ctc_multi_lr_s0 multi_sr=exp/ctc_multi_sr_s0 \\
          multi_lr_sr=exp/ctc_multi_lr_sr_s0

The PCA (numpy SVD of the centred utterance means) is fitted per system.
Each panel also gives the ratio of between-class to within-class variance
of the utterance means in the full representation space (a Fisher ratio:
trace(S_b) / trace(S_w), S_b the scatter of the class means about the
global mean weighted by class size, S_w the scatter about the class means;
lower = more invariant to that label). The figures are printed and written
beside the PNG as <out>.tsv (system, label, ratio).
"""

import argparse
import sys
from pathlib import Path

import numpy as np


def fisher_ratio(x: np.ndarray, labels) -> float:
    """trace(S_b) / trace(S_w) of rows ``x`` ``(N, H)`` grouped by ``labels`` (N,).

    Raises: ValueError when there are fewer than two classes."""
    labels = np.asarray(labels)
    classes = sorted(set(labels.tolist()))
    if len(classes) < 2:
        raise ValueError("the Fisher ratio needs at least two classes")
    mu = x.mean(0)
    sb = sw = 0.0
    for c in classes:
        xc = x[labels == c]
        mc = xc.mean(0)
        sb += len(xc) * float(((mc - mu) ** 2).sum())
        sw += float(((xc - mc) ** 2).sum())
    return sb / max(sw, 1e-12)


def pca2(x: np.ndarray) -> np.ndarray:
    """First two principal components of rows ``x`` ``(N, H)`` -> ``(N, 2)``."""
    xc = x - x.mean(0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    return xc @ vt[:2].T


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out_png")
    p.add_argument("data_dir")
    p.add_argument("systems", nargs="+", metavar="NAME=EXP-DIR")
    p.add_argument("--layer", type=int, default=1, help="shared layer (1 = the conv front end; default %(default)s)")
    p.add_argument("--num-threads", type=int, default=1)
    a = p.parse_args(argv)
    import torch

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mtlasr.datadir import read_table
    from mtlasr.features import load_features
    from mtlasr.nnet.probe import layer_representations
    from mtlasr.nnet.train import load_for_inference

    torch.set_num_threads(a.num_threads)
    data = Path(a.data_dir)
    utt2lang = read_table(data / "utt2lang")
    utt2spk = read_table(data / "utt2spk")
    systems = []
    for s in a.systems:
        name, sep, d = s.partition("=")
        if not sep:
            raise SystemExit(f"plot_fig4.py: '{s}' is not NAME=EXP-DIR")
        ckpt = Path(d) / "final.pt" if Path(d).is_dir() else Path(d)
        systems.append((name, ckpt))
    feats_cache = {}
    fig, axes = plt.subplots(2, len(systems), figsize=(3.6 * len(systems), 7.0), squeeze=False)
    rows = []
    for j, (name, ckpt) in enumerate(systems):
        model, cfg = load_for_inference(ckpt, "cpu")
        fc = cfg["features"]
        key = (bool(fc["norm_vars"]), int(fc["delta_order"]))
        if key not in feats_cache:
            feats_cache[key] = load_features(data, norm_vars=key[0], delta_order=key[1])
        reps = layer_representations(model, cfg, feats_cache[key], [a.layer])[a.layer]
        utts = list(reps)
        x = np.stack([reps[u].mean(0) for u in utts])
        xy = pca2(x)
        for i, (label, table) in enumerate((("language", utt2lang), ("speaker", utt2spk))):
            lab = [table[u] for u in utts]
            ratio = fisher_ratio(x, lab)
            rows.append((name, label, ratio))
            ax = axes[i, j]
            for c in sorted(set(lab)):
                m = np.array([v == c for v in lab])
                ax.scatter(xy[m, 0], xy[m, 1], s=5, alpha=0.6, label=c)
            ax.set_title(f"{name}: by {label}\nFisher ratio {ratio:.2f}", fontsize=9)
            ax.tick_params(labelsize=7)
            if j == len(systems) - 1:
                ax.legend(fontsize=7, markerscale=2, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(f"Utterance means of layer {a.layer} ({data}), first two principal components", fontsize=10)
    fig.tight_layout()
    out = Path(a.out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    with open(out.with_suffix(".tsv"), "w", encoding="utf-8") as f:
        f.write("system\tlabel\tfisher_ratio\n")
        for name, label, ratio in rows:
            f.write(f"{name}\t{label}\t{ratio:.4f}\n")
            print(f"{name}\t{label}\tFisher ratio {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
