"""Self-supervised pre-training of a small wav2vec2 network on a data dir's
own audio, for recipes without a public checkpoint (nothing can be
downloaded here).

Usage:
  python3 -m mtlasr.bin.pretrain_wav2vec2 [options] <data-dir> <out-checkpoint-dir>

  e.g.: python3 -m mtlasr.bin.pretrain_wav2vec2 --config conf/w2v2_small.yaml --epochs 20 \\
          data/train_raw exp/w2v2_pretrained

<data-dir> holds framed waveforms (steps/make_mfcc.sh --raw-frames 160:
feats.scp of ``(T, 160)`` matrices). The objective is wav2vec 2.0's
(Baevski et al., NeurIPS 2020, sec. 3.2-3.3, eqs. 2-4), as transformers'
``Wav2Vec2ForPreTraining`` implements it: spans of the CNN features are
masked (mask_time_prob, mask_time_length), the transformer's output at a
masked step must pick that step's quantised feature among num_negatives
distractors of the same utterance (contrastive loss, temperature kappa),
plus diversity_loss_weight times the codebook diversity loss; the Gumbel
softmax temperature anneals from 2 to 0.5 over the run (the paper's range).

Batches: utterances sorted by length, --batch-size per batch, every
utterance of a batch cropped to the batch's shortest (at a random offset)
and to --max-seconds, so no padding reaches the CNN's group norm. Each
utterance is normalised to zero mean and unit variance. The loss is divided
by the number of masked steps. Adam (AdamW with --weight-decay), learning
rate warmed up linearly over the first 10% of updates then decayed linearly
to 0. Every random choice (order, crops, masks, negatives, initialisation)
follows --seed, so two runs give the same checkpoint.

Writes <out-checkpoint-dir> (``save_pretrained``: config.json and
model.safetensors, which ``model.w2v2_dir`` loads), replacing it only once
complete, plus <out-checkpoint-dir>/pretrain_history.json and
pretrain_curve.png (loss per epoch). --config: a YAML mapping of
``Wav2Vec2Config`` fields (the network; unknown fields are errors).
"""

import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

from mtlasr.cli import make_parser, program

logger = logging.getLogger("pretrain_wav2vec2")


def get_parser():
    p = make_parser(__doc__, "data_dir", "out_dir")
    p.add_argument("--config", default=None, help="YAML of Wav2Vec2Config fields (default: transformers' base)")
    p.add_argument("--epochs", type=int, default=10, help="(default %(default)s)")
    p.add_argument("--batch-size", type=int, default=8, help="utterances per batch (default %(default)s)")
    p.add_argument("--max-seconds", type=float, default=6.0,
                   help="crop utterances to at most this long (default %(default)s)")
    p.add_argument("--lr", type=float, default=5e-4, help="peak learning rate (default %(default)s)")
    p.add_argument("--weight-decay", type=float, default=0.01, help="(default %(default)s)")
    p.add_argument("--grad-clip", type=float, default=5.0, help="(default %(default)s)")
    p.add_argument("--samples-per-frame", type=int, default=160, help="(default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-threads", type=int, default=1, help="torch CPU threads (default %(default)s)")
    return p


def lr_at(step: int, total: int, peak: float) -> float:
    """Linear warm-up over the first 10% of ``total`` updates, then linear
    decay to 0 (wav2vec 2.0's pre-training schedule, sec. 4.2)."""
    warm = max(1, total // 10)
    if step < warm:
        return peak * (step + 1) / warm
    return peak * max(0.0, (total - step) / max(1, total - warm))


def gumbel_temperature(step: int, total: int) -> float:
    """Gumbel softmax temperature, 2 -> 0.5 geometrically over the run."""
    return 2.0 * (0.25 ** (step / max(1, total - 1)))


def make_batches(lengths, batch_size):
    """Index lists of ``batch_size`` utterances of similar length (sorted)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[k: k + batch_size] for k in range(0, len(order), batch_size)]


def run(args):
    import numpy as np
    import torch
    import yaml
    from transformers import Wav2Vec2Config, Wav2Vec2ForPreTraining
    from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices, _sample_negative_indices

    from mtlasr.features import load_features
    from mtlasr.nnet.wav2vec2 import normalise_waveform

    torch.set_num_threads(args.num_threads)
    fields = {}
    if args.config:
        fields = yaml.safe_load(Path(args.config).read_text()) or {}
        if not isinstance(fields, dict):
            raise ValueError(f"{args.config}: not a mapping of Wav2Vec2Config fields")
    unknown = sorted(set(fields) - set(Wav2Vec2Config().to_dict()))
    if unknown:
        raise ValueError(f"{args.config}: unknown Wav2Vec2Config field(s) {', '.join(unknown)}")
    feats = load_features(args.data_dir, norm_vars=False, delta_order=0, cmvn="none")
    s = args.samples_per_frame
    bad = [u for u, x in feats.items() if x.shape[1] != s]
    if bad:
        raise ValueError(f"{args.data_dir}/feats.scp: utterance {bad[0]} has {feats[bad[0]].shape[1]} values per "
                         f"frame, not {s} (make the features with steps/make_mfcc.sh --raw-frames {s})")
    utts = [u for u, x in feats.items() if x.shape[0] > 0]
    if not utts:
        raise ValueError(f"{args.data_dir}: no utterance with frames")
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)  # transformers' mask and negative sampling draw from numpy's global generator
    rng = np.random.default_rng(args.seed)
    config = Wav2Vec2Config(**fields)
    model = Wav2Vec2ForPreTraining(config)
    model.train()
    n_params = sum(p.numel() for p in model.wav2vec2.parameters())
    lengths = [feats[u].shape[0] for u in utts]
    batches = make_batches(lengths, args.batch_size)
    total = args.epochs * len(batches)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    max_frames = int(args.max_seconds * 16000 / s) if args.max_seconds > 0 else 0
    logger.info("%d utterances (%.2f h) in %d batches; %d parameters (wav2vec2 %d); %d epochs", len(utts),
                sum(lengths) / 360000 * (s / 160), len(batches), sum(p.numel() for p in model.parameters()),
                n_params, args.epochs)
    history, step, t_start = [], 0, time.time()
    for epoch in range(args.epochs):
        t0, tot, tot_c, tot_d, tot_m, frames = time.time(), 0.0, 0.0, 0.0, 0, 0
        for bi in rng.permutation(len(batches)):
            idx = batches[bi]
            t = min(lengths[i] for i in idx)
            if max_frames:
                t = min(t, max_frames)
            crops = []
            for i in idx:
                off = int(rng.integers(0, lengths[i] - t + 1))
                crops.append(feats[utts[i]][off: off + t].reshape(-1))
            wav = torch.from_numpy(np.stack(crops))
            wav = normalise_waveform(wav, torch.full((len(idx),), wav.shape[1], dtype=torch.int64))
            t_feat = int(model._get_feat_extract_output_lengths(wav.shape[1]))
            if t_feat < 2:
                continue
            mask = _compute_mask_indices((len(idx), t_feat), mask_prob=config.mask_time_prob,
                                         mask_length=config.mask_time_length, min_masks=2)
            neg = _sample_negative_indices((len(idx), t_feat), config.num_negatives, mask)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total, args.lr)
            model.set_gumbel_temperature(gumbel_temperature(step, total))
            out = model(wav, mask_time_indices=torch.from_numpy(mask),
                        sampled_negative_indices=torch.from_numpy(neg))
            n_masked = int(mask.sum())
            loss = out.loss / max(n_masked, 1)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"epoch {epoch + 1}: the pre-training loss is not finite")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if args.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
            opt.step()
            step += 1
            tot += out.loss.item()
            tot_c += out.contrastive_loss.item()
            tot_d += out.diversity_loss.item()
            tot_m += n_masked
            frames += t * len(idx)
        secs = time.time() - t0
        rec = {"epoch": epoch + 1, "loss": tot / max(tot_m, 1), "contrastive": tot_c / max(tot_m, 1),
               "diversity": tot_d / max(tot_m, 1), "perplexity": out.codevector_perplexity.item(),
               "seconds": secs, "frames_per_second": frames / max(secs, 1e-9)}
        history.append(rec)
        logger.info("epoch %d: loss %.4f per masked step (contrastive %.4f, diversity %.4f), codevector perplexity "
                    "%.1f, %.1f s (%.0f frames/s)", epoch + 1, rec["loss"], rec["contrastive"], rec["diversity"],
                    rec["perplexity"], secs, rec["frames_per_second"])
    out_dir = Path(args.out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.wav2vec2.save_pretrained(tmp)
    (tmp / "pretrain_history.json").write_text(json.dumps(history, indent=1) + "\n")
    plot(history, tmp / "pretrain_curve.png")
    old = out_dir.with_name(out_dir.name + ".old")
    if out_dir.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    shutil.rmtree(old, ignore_errors=True)
    size = sum(f.stat().st_size for f in out_dir.iterdir())
    logger.info("wrote %s: wav2vec2 of %d parameters (%.1f MB on disk) after %d updates in %.1f s", out_dir,
                n_params, size / 1e6, step, time.time() - t_start)
    return 0


def plot(history, path):
    from mtlasr.plot import save, subplots

    fig, ax = subplots(figsize=(5, 3.2))
    ep = [r["epoch"] for r in history]
    ax.plot(ep, [r["loss"] for r in history], marker="o", label="loss")
    ax.plot(ep, [r["contrastive"] for r in history], marker=".", label="contrastive")
    ax.set_xlabel("epoch")
    ax.set_ylabel("per masked step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, path)


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
