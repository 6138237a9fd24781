"""Speaker information per layer: a speaker probe on the frozen shared layers
of one or more acoustic models (seed 002, Adi et al., sec. 4.2, Fig. 2).

Usage:
  python3 -m mtlasr.bin.probe_layers [options] <out-dir> <data-dir> <name>=<exp-dir-or-final.pt>[,<...>] [<name>=<...> ...]

  e.g.: python3 -m mtlasr.bin.probe_layers --layers "first mid last" exp/probe_spk data/train \\
          baseline=exp/lstm mt=exp/lstm_spk_mt adv=exp/lstm_spk_adv/final.pt
        python3 -m mtlasr.bin.probe_layers exp/probe_spk_s0_1_2 data/test \\
          base=exp/ctc_base_s0,exp/ctc_base_s1,exp/ctc_base_s2

For every system, the per-frame outputs of the chosen shared layers are
computed for every utterance of <data-dir> with the decoding-time chunks,
mean-pooled over the utterance (or classified frame by frame with
--pooling frame), and a linear (--hidden 0) or one-hidden-layer classifier
is trained on them to identify the speaker. For every speaker,
--held-out-per-speaker utterances are held out for testing (speakers are
the same in training and test; speakers with too few utterances are used
for training only). Each probe seed draws its own held-out utterances and
initialisation; accuracies are reported as mean and sample std over seeds.
A system given as several comma-separated models (its training seeds) is
probed model by model; its accuracy is then the mean over models of each
model's mean over probe seeds, and the std is over models (the spread over
training seeds; mtlasr.nnet.probe.combine_models).
Layer names (first, mid, last) are resolved per model; layer 0 ("input")
is the normalised input features, a reference (with per-speaker CMVN their
utterance means carry almost no speaker information).

Writes <out-dir>/probe.tsv (``system layer acc_mean acc_std n_test
n_speakers n_models``, accuracies as fractions), <out-dir>/probe.md (systems by
layers, "acc ± std" in percent, chance levels and the command line) and
<out-dir>/probe.png (accuracy against layer, one line per system, chance
dashed). Lower accuracy = more speaker-invariant layer.
"""

import logging
import shlex
import sys
import time
from pathlib import Path

from mtlasr.cli import make_parser
from mtlasr.threads import set_torch_threads

logger = logging.getLogger("probe_layers")


def get_parser():
    p = make_parser(__doc__, "out_dir", "data_dir")
    p.add_argument("--layers", default="all",
                   help='layers to probe: "all", indices "1 2 3" or names "first mid last"; "input" (or 0) adds the '
                        'input features as a reference (default %(default)s)')
    p.add_argument("--held-out-per-speaker", type=int, default=2,
                   help="test utterances per speaker (default %(default)s)")
    p.add_argument("--seeds", default="0 1 2", help='probe seeds (default "%(default)s")')
    p.add_argument("--hidden", type=int, default=0,
                   help="hidden units of the probe, 0 = linear (default %(default)s)")
    p.add_argument("--pooling", choices=["mean", "frame"], default="mean",
                   help="mean: classify the utterance mean of the frames; frame: classify frames and sum "
                        "their log-probabilities (default %(default)s)")
    p.add_argument("--epochs", type=int, default=300, help="full-batch Adam steps (default %(default)s)")
    p.add_argument("--lr", type=float, default=0.01, help="(default %(default)s)")
    p.add_argument("--weight-decay", type=float, default=1e-3, help="L2 on the probe weights (default %(default)s)")
    p.add_argument("--device", default="cpu", help="where the acoustic models run (default %(default)s)")
    p.add_argument("--num-threads", type=int, default=1, help="torch CPU threads (default %(default)s)")
    p.add_argument("systems", nargs="+", metavar="NAME=EXP-DIR-OR-FINAL.PT[,...]")
    return p


def parse_systems(items):
    """``name=path[,path...]`` -> ordered {name: [checkpoint paths]}; a
    directory means its final.pt; several paths are models of one system
    (e.g. its training seeds).

    Raises: ValueError for a malformed item or a repeated name;
    FileNotFoundError naming a missing checkpoint.
    """
    out = {}
    for item in items:
        name, sep, paths = item.partition("=")
        if not sep or not name or not paths or "" in paths.split(","):
            raise ValueError(f"system '{item}' is not <name>=<exp-dir-or-final.pt>[,<exp-dir-or-final.pt>...]")
        if name in out:
            raise ValueError(f"system name '{name}' given twice")
        out[name] = []
        for path in paths.split(","):
            ckpt = Path(path) / "final.pt" if Path(path).is_dir() else Path(path)
            if not ckpt.is_file():
                raise FileNotFoundError(f"{ckpt}: no such checkpoint (system '{name}'; "
                                        "give an exp dir with final.pt or a .pt file)")
            out[name].append(ckpt)
    return out


def write_markdown(path, results, layers, chance, n_test, n_spk, args, command):
    from mtlasr.datadir import atomic_open

    n_models = sorted({int(r.get("n_models", 1)) for res in results.values() for r in res.values()})
    if n_models == [1]:
        spread = "mean ± std over probe seeds"
    else:
        spread = (f"mean ± std over the {'/'.join(map(str, n_models))} models (training seeds) of each system, "
                  "each model's accuracy being its mean over probe seeds")

    head = "| system | " + " | ".join("input" if lay == 0 else f"layer {lay}" for lay in layers) + " |"
    lines = [f"# Speaker probe accuracy per layer ({args.data_dir})", "",
             f"Probe: {'linear' if args.hidden == 0 else f'{args.hidden}-unit MLP'}, "
             f"{args.pooling} pooling, seeds {args.seeds}; {n_test} test utterances "
             f"({args.held_out_per_speaker} per speaker) of {n_spk} speakers. Accuracy in %, {spread} "
             "(lower = less speaker information).", "",
             head, "|" + "---|" * (len(layers) + 1)]
    for name, res in results.items():
        cells = [f"{100 * res[lay]['acc_mean']:.1f} ± {100 * res[lay]['acc_std']:.1f}" if lay in res else "–"
                 for lay in layers]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"Chance: {100 * chance[0]:.1f}% (1/{n_spk} speakers), "
                  f"{100 * chance[1]:.1f}% (majority class).", "",
              f"Command: `{command}`", ""]
    with atomic_open(path) as f:
        f.write("\n".join(lines))


def plot(path, results, chance):
    from mtlasr.plot import save, subplots

    fig, ax = subplots(figsize=(5.5, 3.5))
    for name, res in results.items():
        lays = sorted(res)
        ax.errorbar(lays, [100 * res[lay]["acc_mean"] for lay in lays],
                    yerr=[100 * res[lay]["acc_std"] for lay in lays], marker="o", capsize=3, label=name)
    ax.axhline(100 * chance, color="k", ls="--", label=f"chance ({100 * chance:.1f}%)")
    all_lays = sorted({lay for res in results.values() for lay in res})
    ax.set_xticks(all_lays, ["input" if lay == 0 else str(lay) for lay in all_lays])
    ax.set_xlabel("shared layer")
    ax.set_ylabel("speaker accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, path)


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = get_parser().parse_args(argv)
    import torch

    from mtlasr.datadir import atomic_open, read_table
    from mtlasr.features import load_features
    from mtlasr.nnet.probe import combine_models, evaluate_layers, layer_representations, resolve_layers
    from mtlasr.nnet.build import load_for_inference

    command = " ".join(shlex.quote(a) for a in ["python3", "-m", "mtlasr.bin.probe_layers"]
                       + (sys.argv[1:] if argv is None else list(argv)))
    set_torch_threads(args.num_threads)  # at most the cores the job was given
    device = torch.device(args.device)
    t0 = time.time()
    try:
        seeds = [int(s) for s in args.seeds.split()]
        if not seeds:
            raise ValueError("--seeds: no seed given")
        systems = parse_systems(args.systems)
        u2s_path = Path(args.data_dir) / "utt2spk"
        if not u2s_path.is_file():
            raise FileNotFoundError(f"{u2s_path}: no such file (the probe needs the speakers of {args.data_dir})")
        utt2spk = read_table(u2s_path)
        models = {}
        for name, ckpts in systems.items():  # load and check every model before the long part
            models[name] = []
            for ckpt in ckpts:
                model, cfg = load_for_inference(ckpt, device)
                try:
                    lays = resolve_layers(args.layers, len(model.trunk.layers))
                except ValueError as e:
                    raise ValueError(f"{ckpt}: {e}") from None
                models[name].append((ckpt, model, cfg, lays))
        feats_cache, results = {}, {}
        for name, group in models.items():
            per_model = []
            for ckpt, model, cfg, lays in group:
                fc = cfg["features"]
                key = (bool(fc["norm_vars"]), int(fc["delta_order"]), fc.get("cmvn", "speaker"))
                if key not in feats_cache:
                    feats_cache[key] = load_features(args.data_dir, norm_vars=key[0], delta_order=key[1],
                                                     cmvn=key[2])
                t1 = time.time()
                reps = layer_representations(model, cfg, feats_cache[key], lays, device)
                t2 = time.time()
                per_model.append(evaluate_layers(reps, utt2spk, seeds, args.held_out_per_speaker,
                                                 hidden=args.hidden, epochs=args.epochs, lr=args.lr,
                                                 pooling=args.pooling, weight_decay=args.weight_decay))
                for lay, r in per_model[-1].items():
                    logger.info("%s (%s) layer %d: speaker accuracy %.1f%% ± %.1f (%d test utterances, %d speakers)",
                                name, ckpt, lay, 100 * r["acc_mean"], 100 * r["acc_std"], r["n_test"],
                                r["n_speakers"])
                logger.info("%s (%s): representations %.1f s, probes %.1f s", name, ckpt, t2 - t1, time.time() - t2)
                del reps
            try:
                results[name] = combine_models(per_model)
            except ValueError as e:
                raise ValueError(f"system '{name}': {e}") from None
    except (OSError, KeyError, ValueError) as e:
        logger.error("%s", e)
        return 1
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "probe.tsv") as f:
        f.write("system\tlayer\tacc_mean\tacc_std\tn_test\tn_speakers\tn_models\n")
        for name, res in results.items():
            for lay, r in res.items():
                f.write(f"{name}\t{lay}\t{r['acc_mean']:.4f}\t{r['acc_std']:.4f}\t{r['n_test']}\t{r['n_speakers']}"
                        f"\t{r['n_models']}\n")
    first = next(iter(next(iter(results.values())).values()))
    chance = (first["chance_uniform"], first["chance_majority"])
    layers = sorted({lay for res in results.values() for lay in res})
    write_markdown(out / "probe.md", results, layers, chance, first["n_test"], first["n_speakers"], args, command)
    plot(out / "probe.png", results, chance[0])
    logger.info("wrote %s/probe.{tsv,md,png} in %.1f s", out, time.time() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
