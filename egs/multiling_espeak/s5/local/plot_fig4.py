#!/usr/bin/env python3
"""Seed 004's Fig. 4: utterance representations of the conv front end
("feature transformation" layer), averaged over each utterance's frames and
projected on their first two principal components, coloured by language
(top row) and by speaker (bottom row), one column per system.

Usage:
  local/plot_fig4.py [options] <out.png> <data-dir> <name>=<exp-dir>[,<exp-dir>...] [<name>=<...> ...]

  e.g.: local/plot_fig4.py exp/results/fig4.png data/test \\
          multi=exp/ctc_multi_s0 multi_lr=exp/ctc_multi_lr_s0 multi_sr=exp/ctc_multi_sr_s0 \\
          multi_lr_sr=exp/ctc_multi_lr_sr_s0

The PCA (numpy SVD of the centred utterance means) is fitted per system.
Each panel also gives the ratio of between-class to within-class variance
of the utterance means in the full representation space (a Fisher ratio:
trace(S_b) / trace(S_w), S_b the scatter of the class means about the
global mean weighted by class size, S_w the scatter about the class means;
lower = more invariant to that label). A system given as several
comma-separated exp dirs (its training seeds) is drawn from the first; its
Fisher ratios are the mean and sample std over all of them. The figures are
printed and written beside the PNG as <out>.tsv (system, label, mean ratio,
std, number of models, the ratio of each model).
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
    p.add_argument("systems", nargs="+", metavar="NAME=EXP-DIR[,EXP-DIR...]")
    p.add_argument("--layer", type=int, default=1, help="shared layer (1 = the conv front end; default %(default)s)")
    p.add_argument("--num-threads", type=int, default=1)
    a = p.parse_args(argv)
    import torch

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mtlasr.datadir import atomic_open, read_table
    from mtlasr.plot import save
    from mtlasr.features import load_features
    from mtlasr.nnet.probe import layer_representations
    from mtlasr.nnet.build import load_for_inference

    torch.set_num_threads(a.num_threads)
    data = Path(a.data_dir)
    utt2lang = read_table(data / "utt2lang")
    utt2spk = read_table(data / "utt2spk")
    systems = []
    for s in a.systems:
        name, sep, dirs = s.partition("=")
        if not sep or not name or "" in dirs.split(","):
            raise SystemExit(f"plot_fig4.py: '{s}' is not NAME=EXP-DIR[,EXP-DIR...]")
        ckpts = [Path(d) / "final.pt" if Path(d).is_dir() else Path(d) for d in dirs.split(",")]
        for c in ckpts:
            if not c.is_file():
                raise SystemExit(f"plot_fig4.py: {c}: no such checkpoint (system '{name}')")
        systems.append((name, ckpts))
    feats_cache = {}
    fig, axes = plt.subplots(2, len(systems), figsize=(3.6 * len(systems), 7.0), squeeze=False)
    rows = []
    labels = (("language", utt2lang), ("speaker", utt2spk))
    for j, (name, ckpts) in enumerate(systems):
        ratios = {label: [] for label, _ in labels}
        for k, ckpt in enumerate(ckpts):
            model, cfg = load_for_inference(ckpt, "cpu")
            fc = cfg["features"]
            key = (bool(fc["norm_vars"]), int(fc["delta_order"]), fc.get("cmvn", "speaker"))
            if key not in feats_cache:
                feats_cache[key] = load_features(data, norm_vars=key[0], delta_order=key[1], cmvn=key[2])
            reps = layer_representations(model, cfg, feats_cache[key], [a.layer])[a.layer]
            utts = list(reps)
            x = np.stack([reps[u].mean(0) for u in utts])
            for label, table in labels:
                ratios[label].append(fisher_ratio(x, [table[u] for u in utts]))
            if k == 0:
                xy, drawn = pca2(x), utts
        for i, (label, table) in enumerate(labels):
            r = np.array(ratios[label])
            std = float(r.std(ddof=1)) if len(r) > 1 else 0.0
            rows.append((name, label, float(r.mean()), std, r.tolist()))
            lab = [table[u] for u in drawn]
            ax = axes[i, j]
            for c in sorted(set(lab)):
                m = np.array([v == c for v in lab])
                ax.scatter(xy[m, 0], xy[m, 1], s=5, alpha=0.6, label=c)
            spread = f" ± {std:.2f} ({len(r)} seeds)" if len(r) > 1 else ""
            ax.set_title(f"{name}: by {label}\nFisher ratio {r.mean():.2f}{spread}", fontsize=9)
            ax.tick_params(labelsize=7)
            if j == len(systems) - 1:
                ax.legend(fontsize=7, markerscale=2, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(f"Utterance means of layer {a.layer} ({data}), first two principal components"
                 + (" (of each system's first model)" if any(len(c) > 1 for _, c in systems) else ""), fontsize=10)
    out = Path(a.out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    save(fig, out, dpi=110)
    with atomic_open(out.with_suffix(".tsv")) as f:
        f.write("system\tlabel\tfisher_ratio\tfisher_std\tn_models\tper_model\n")
        for name, label, ratio, std, each in rows:
            f.write(f"{name}\t{label}\t{ratio:.4f}\t{std:.4f}\t{len(each)}\t{','.join(f'{v:.4f}' for v in each)}\n")
            print(f"{name}\t{label}\tFisher ratio {ratio:.3f} ± {std:.3f} ({len(each)} models)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
