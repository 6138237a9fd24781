"""Training loop: cross-entropy on frame labels, full-state checkpoints, exact resume.

Every epoch ends with a checkpoint ``epoch-<n>.pt`` holding the model,
optimizer, config, history and RNG states; ``checkpoint.pt`` is the latest.
A rerun resumes after the last finished epoch. Chunk order in epoch n
depends only on (seed, n), so a resumed run sees the same data order as an
uninterrupted one. ``best.pt`` is the epoch with the lowest validation
loss; ``final.pt`` is a copy of it.

Loss (seed 000 sec. 3): L = CE(main) + sum_k lambda_k L_k over the auxiliary
tasks declared in the config (``tasks``; lambda_k is ``tasks.<k>.weight``).
The per-task losses are logged and kept in the history; the best epoch is
chosen on the main task's validation cross-entropy.

Learning rate: exponential decay per epoch from ``lr_initial`` to
``lr_final`` at the last epoch, lr_n = lr_0 (lr_final/lr_0)^(n/(E-1))
(seed 000 sec. 5.2 gives the two end points).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Dict

import torch

from ..datadir import PathLike, atomic_open
from .build import build_model, make_optimizer, portable_config
from .config import curriculum_labels, stage_of
from .ddp import loss_counts, share_losses, sum_over_ranks
from .evaluate import evaluate, task_losses, to_device
from .model import LstmState
from .seqdata import SequenceDataset
from .tasks import step_lambdas, task_weights

logger = logging.getLogger(__name__)


def lr_at(epoch: int, cfg_train: Dict[str, Any]) -> float:
    """Learning rate of 0-based ``epoch``."""
    e = cfg_train["max_epochs"]
    if e <= 1:
        return cfg_train["lr_initial"]
    ratio = cfg_train["lr_final"] / cfg_train["lr_initial"]
    return cfg_train["lr_initial"] * ratio ** (epoch / (e - 1))


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class Trainer:
    """Trains :class:`AcousticModel` with frame cross-entropy on chunks, or
    with CTC on whole utterances (``model.criterion``); the task registry,
    GRL schedules, staged training and checkpoints are the same for both.

    Args:
      cfg: resolved config (see :mod:`mtlasr.nnet.config`).
      train, valid: :class:`ChunkDataset` (ce) or :class:`SequenceDataset`
        (ctc); valid may be None: then the last epoch is final.
      num_pdfs: output classes (pdfs, or CTC units with the blank).
      exp_dir: output directory.
      device: torch device.
      rank, world_size: for DistributedDataParallel (rank 0 writes files;
        the process group must be initialised).

    Multi-process training (world_size > 1): each rank trains on its share
    of every step (the datasets' ``minibatches``), and each of its losses is
    weighted by world_size * (its count / the count over all ranks) of what
    that loss averages over (:mod:`mtlasr.nnet.ddp`), so that the gradients
    DistributedDataParallel averages are those of one process with
    world_size times the minibatch; dynamic loss weights are computed from
    the losses over all ranks, and the history's figures (training and
    validation) are over all ranks, the same on every rank. One process
    (world_size 1) runs none of this.

    The auxiliary tasks trained are those of ``cfg["tasks"]``; ``train.aux``
    (and ``valid.aux``) must hold their targets.

    ``train.init`` starts the encoder and main head from another run's
    checkpoint (the auxiliary heads start at random).

    Raises: ValueError if a declared task has no targets in ``train``, or
    ``train.init`` does not fit the model.
    """

    def __init__(self, cfg: Dict[str, Any], train, valid,
                 num_pdfs: int, exp_dir: PathLike, device: torch.device, rank: int = 0, world_size: int = 1):
        self.cfg, self.train, self.valid = cfg, train, valid
        self.exp = Path(exp_dir)
        self.device, self.rank, self.world_size = device, rank, world_size
        torch.manual_seed(cfg["train"]["seed"])
        input_dim = train.feats[0].shape[1]
        missing = [n for n in cfg["tasks"] if n not in train.aux]
        if missing:
            raise ValueError(f"tasks {', '.join(missing)}: no targets loaded for the training data")
        self.task_dims = {n: train.aux[n].dim for n in cfg["tasks"]}
        self.model = build_model(cfg, input_dim, num_pdfs, self.task_dims).to(device)
        if cfg["train"]["init"]:
            self._init_from(cfg["train"]["init"])
        self.opt = make_optimizer(self.model, cfg["train"])
        self.history: list = []
        self.start_epoch = 0
        self.updates = 0     # optimiser steps so far (train.freeze_encoder_updates)
        # what train.freeze_encoder_updates holds still: every trainable parameter outside the heads
        self._encoder_params = [p for n, p in self.model.named_parameters()
                                if p.requires_grad and not n.startswith("heads.")]
        self._frozen = False
        self._spare = None   # the batch of a step in which this rank has none (world_size > 1)
        self.ddp_model = self.model
        if world_size > 1:
            self.ddp_model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=bool(cfg["tasks"]))  # staged training leaves some unused

    def _init_from(self, path: str) -> None:
        st = torch.load(path, map_location=self.device, weights_only=False)
        keep = {k: v for k, v in st["model"].items() if k.startswith(("trunk.", "heads.main."))}
        own = self.model.state_dict()
        bad = [k for k, v in keep.items() if k not in own or own[k].shape != v.shape]
        lacking = [k for k in own if k.startswith(("trunk.", "heads.main.")) and k not in keep]
        if bad or lacking:
            raise ValueError(f"train.init: {path} does not fit this model (e.g. "
                             f"{(bad or lacking)[0]}): another encoder, size or unit set")
        self.model.load_state_dict(keep, strict=False)
        for name, at in self.model.branch_at.items():  # branches start as the initialised shared layers
            self.model.branches[name] = self.model.trunk.make_branch(at).to(self.device)
        logger.info("encoder and main head initialised from %s", path)

    # ------------------------------------------------------------ state
    def state(self, epoch: int) -> Dict[str, Any]:
        return {
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "config": portable_config(self.cfg, self.model),
            "history": self.history,
            "input_dim": self.train.feats[0].shape[1],
            "num_pdfs": self.model.heads["main"].out_features,
            "task_dims": self.task_dims,
            "torch_rng": torch.get_rng_state(),
            "updates": self.updates,
            "world_size": self.world_size,
        }

    def try_resume(self) -> bool:
        """Load ``checkpoint.pt`` if present; returns whether it did."""
        ck = self.exp / "checkpoint.pt"
        if not ck.is_file():
            return False
        st = torch.load(ck, map_location=self.device, weights_only=False)
        self.model.load_state_dict(st["model"])
        self.opt.load_state_dict(st["optimizer"])
        self.history = st["history"]
        torch.set_rng_state(st["torch_rng"])
        self.start_epoch = st["epoch"] + 1
        self.updates = st.get("updates", 0)
        logger.info("resumed from %s after epoch %d", ck, st["epoch"] + 1)
        if st.get("world_size", 1) != self.world_size and self.rank == 0:
            logger.warning("%s was trained by %d process(es), this run has %d: the global minibatch "
                           "(train.minibatch per process) changes from here on", ck, st.get("world_size", 1),
                           self.world_size)
        return True

    # ------------------------------------------------------------ loop
    def run(self) -> Dict[str, Any]:
        """Train until max_epochs (or early stop); returns the best epoch's record."""
        tc = self.cfg["train"]
        tasks = self.cfg["tasks"]
        ctc = isinstance(self.train, SequenceDataset)
        sl = None if ctc else self.train.spec.out_slice
        patience = tc["early_stop_patience"]
        for epoch in range(self.start_epoch, tc["max_epochs"]):
            lr = lr_at(epoch, tc)
            for g in self.opt.param_groups:
                g["lr"] = lr
            stage = stage_of(tc, epoch)
            self.model.detach_aux = stage in ("main", "aux")
            if tc["stages"] and self.rank == 0:
                logger.info("epoch %d: %s", epoch + 1, {"main": "main task; auxiliary heads on detached inputs",
                                                       "aux": "auxiliary heads only",
                                                       "joint": "all tasks jointly"}[stage])
            t0 = time.time()
            # tot_n: what the main loss averages over (labelled frames; CTC: transcribed
            # utterances); aux_n: the same for the auxiliary losses (CTC: all utterances)
            tot_loss, tot_n, aux_n, tot_frames, nb = 0.0, 0, 0, 0, 0
            aux_tot = {n: 0.0 for n in tasks}
            seed = tc["seed"] * 1000 + epoch
            if ctc:
                sq = self.cfg["sequence"]
                groups = curriculum_labels(tc, epoch)
                if groups is not None and self.rank == 0:
                    logger.info("epoch %d: curriculum: utterances of %s only", epoch + 1, ",".join(groups))
                kw = dict(max_frames=sq["max_frames"], groups=groups, crop_frames=sq["crop_untranscribed"])
                num_batches = self.train.num_batches(tc["minibatch"], world_size=self.world_size, **kw)
                if num_batches == 0:
                    raise ValueError(f"epoch {epoch + 1}: no training utterance of curriculum group(s) "
                                     f"{','.join(groups or [])} (groups here: {self.train.group_counts()})")
                if tc["batching"] == "disjoint":
                    kw["subset"] = "transcribed"
                    num_batches = self.train.num_batches(tc["minibatch"], world_size=self.world_size, **kw)
                    if num_batches == 0 or self.train.num_batches(tc["minibatch"], world_size=self.world_size,
                                                                  **{**kw, "subset": "untranscribed"}) == 0:
                        raise ValueError("train.batching disjoint: needs transcribed and speaker-only "
                                         f"(--extra-data) utterances; the training set has "
                                         f"{len(self.train) - self.train.num_untranscribed} and "
                                         f"{self.train.num_untranscribed}")
                    aux_batches = self._cycle(tc["minibatch"], seed, {**kw, "subset": "untranscribed"})
                batches = self.train.minibatches(tc["minibatch"], seed=seed, rank=self.rank,
                                                 world_size=self.world_size, **kw)
            else:
                num_batches = self.train.num_minibatches(tc["minibatch"], seed, self.world_size)
                batches = self.train.minibatches(tc["minibatch"], seed=seed, rank=self.rank,
                                                 world_size=self.world_size)
            # chunk.carry: the LSTM state carried from each stream's chunk to its next
            state = LstmState() if not ctc and self.train.spec.carry else None
            for batch in batches:
                self._set_encoder_frozen(self.updates < tc["freeze_encoder_updates"])
                empty = batch is None   # (world_size > 1) no batch for this rank in this step
                batch = to_device(self._spare_batch() if empty else batch, self.device)
                progress = (epoch + nb / max(num_batches, 1)) / tc["max_epochs"]
                lambdas = step_lambdas(tasks, progress)  # once per step: loss weights and GRL scales
                for n, spec in tasks.items():
                    if spec["grl"]:
                        self.model.heads[n].grl_scale = lambdas[n]
                _, losses, mask = task_losses(self.ddp_model, batch, tasks, sl, None if empty else state)
                if self.world_size > 1:
                    counts = self._counts(batch, mask, empty)
                if ctc and tc["batching"] == "disjoint":
                    # seed 003 eqs. 2-3: the speech batch gives the CTC loss, the speaker batch
                    # the auxiliary losses; one update on their weighted sum
                    aux_batch = next(aux_batches)
                    aux_empty = aux_batch is None
                    aux_batch = to_device(self._spare_batch() if aux_empty else aux_batch, self.device)
                    _, aux_losses, aux_mask = task_losses(self.ddp_model, aux_batch, tasks, sl)
                    losses = {"main": losses["main"], **{k: aux_losses[k] for k in tasks}}
                    if self.world_size > 1:
                        counts.update({k: v for k, v in self._counts(aux_batch, aux_mask, aux_empty).items()
                                       if k != "main"})
                    tot_frames += 0 if aux_empty else int(aux_batch.x_lens.sum())
                terms = losses
                if self.world_size > 1:  # the losses over all ranks; each rank's share of them
                    glob, shares = share_losses(losses, counts, self.world_size)
                    terms = {k: v * shares[k] for k, v in losses.items()}
                weights, _ = task_weights(tasks, losses if self.world_size == 1 else glob, lambdas,
                                          tc["main_weight"])
                if stage == "aux":
                    weights["main"] = 0.0
                # (a weight can be 0: lambda = 0, a ramp at p = 0, the main task in stage aux)
                # Parameters that get no gradient (None) are not moved by the optimiser.
                loss = sum(weights[n] * terms[n] for n in losses if weights[n] != 0.0)
                if torch.is_tensor(loss):
                    if not torch.isfinite(loss):
                        bad = ", ".join(f"{k} {v.item()}" for k, v in losses.items())
                        raise FloatingPointError(f"epoch {epoch + 1} batch {nb + 1}: loss is not finite ({bad})")
                    self.opt.zero_grad(set_to_none=True)
                    loss.backward()
                    self._drop_encoder_grads()
                    if tc["grad_clip"] > 0:
                        torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc["grad_clip"])
                    self.opt.step()
                    self.updates += 1
                if state is not None:
                    state.detach()
                n = 0 if empty else int(mask.sum())
                na = len(batch.utts) if ctc and not empty else n
                if ctc and tc["batching"] == "disjoint":
                    na = 0 if aux_empty else len(aux_batch.utts)
                tot_loss += losses["main"].item() * n
                for k in aux_tot:
                    aux_tot[k] += losses[k].item() * na
                tot_n += n
                aux_n += na
                tot_frames += int(batch.x_lens.sum()) if ctc and not empty else n
                nb += 1
                if self.rank == 0 and (nb % tc["log_interval"] == 0 or nb == num_batches):
                    el = time.time() - t0
                    logger.info("epoch %d batch %d/%d: %sloss %.4f%s, %.0f frames/s, lr %.6f",
                                epoch + 1, nb, num_batches, "rank 0's " if self.world_size > 1 else "",
                                tot_loss / max(tot_n, 1),
                                "".join(f", {k} {v / max(aux_n, 1):.4f}" for k, v in aux_tot.items()),
                                tot_frames * self.world_size / max(el, 1e-9), lr)
            if self.world_size > 1:  # the sums over all ranks
                vals = sum_over_ranks([tot_loss, tot_n, aux_n, tot_frames] + list(aux_tot.values()), self.device)
                tot_loss = vals[0]
                tot_n, aux_n, tot_frames = (int(round(x)) for x in vals[1:4])
                aux_tot = dict(zip(aux_tot, vals[4:]))
            secs = time.time() - t0
            rec = {"epoch": epoch + 1, "lr": lr, "stage": stage, "train_loss": tot_loss / max(tot_n, 1),
                   "train_frames": tot_frames, "seconds": secs,
                   "frames_per_second": tot_frames / max(secs, 1e-9)}
            rec.update({f"train_{k}_loss": v / max(aux_n, 1) for k, v in aux_tot.items()})
            if self.valid is not None:
                v = evaluate(self.model, self.valid, tc["minibatch"], self.device, tasks, self.rank, self.world_size)
                rec.update(valid_loss=v["loss"], valid_acc=v["acc"])
                if ctc:
                    rec["valid_ter"] = 1.0 - v["acc"]
                rec.update({f"valid_{k}": v[k] for k in v if k.endswith("_loss") and k != "loss"})
            self.history.append(rec)
            if self.rank == 0:
                aux_msg = "".join(f", {k} train {rec[f'train_{k}_loss']:.4f}"
                                  + (f" valid {rec[f'valid_{k}_loss']:.4f}" if f"valid_{k}_loss" in rec else "")
                                  for k in tasks)
                logger.info("epoch %d done in %.1f s (%.0f frames/s): train loss %.4f%s%s", epoch + 1, secs,
                            rec["frames_per_second"], rec["train_loss"],
                            (f", valid loss {rec['valid_loss']:.4f}, " + (
                                f"valid greedy unit error rate {100 * rec['valid_ter']:.2f}%" if ctc else
                                f"valid frame acc {rec['valid_acc']:.4f}")) if "valid_loss" in rec else "", aux_msg)
                self._save_epoch(epoch)
            if patience and self.valid is not None and self._epochs_since_best() >= patience:
                logger.info("no better validation loss for %d epochs: stopping", patience)
                break
        best = self.best_record()
        if self.rank == 0:
            shutil.copyfile(self.exp / f"epoch-{best['epoch']}.pt", self.exp / "final.pt.tmp")
            os.replace(self.exp / "final.pt.tmp", self.exp / "final.pt")
            logger.info("final.pt = epoch %d (%s)", best["epoch"],
                        "last epoch: the main task is not trained" if tc["main_weight"] == 0 else
                        f"valid loss {best['valid_loss']:.4f}" if "valid_loss" in best else "last epoch")
        return best

    def _set_encoder_frozen(self, frozen: bool) -> None:
        """Freeze (or thaw) every trainable parameter outside the task heads
        (train.freeze_encoder_updates; seed 003 sec. 4.2). One process: the
        parameters stop needing gradients, so no backward pass runs through
        the encoder. DistributedDataParallel needs the same parameters in
        every step: there the encoder's gradients are dropped before the
        update instead (the optimiser skips parameters without one)."""
        if frozen != self._frozen:
            if self.rank == 0:
                logger.info("update %d: %s", self.updates + 1,
                            "encoder frozen, task heads only" if frozen else "training the whole network")
            self._frozen = frozen
            if self.world_size == 1:
                for p in self._encoder_params:
                    p.requires_grad_(not frozen)

    def _spare_batch(self):
        """The batch of a step in which this rank has none (a step whose
        batches do not fill every rank: an epoch's last chunks; CTC: its
        longest utterances, or the speaker batches' last): the training
        set's first chunk or utterance. Its losses get zero weight; it runs
        only so that every rank takes part in every update."""
        if self._spare is None:
            self._spare = next(self.train.minibatches(1))
        return self._spare

    def _counts(self, batch, mask: torch.Tensor, empty: bool) -> Dict[str, torch.Tensor]:
        """:func:`loss_counts` of a batch; all 0 for a spare batch."""
        c = loss_counts(self.model, batch, self.cfg["tasks"], mask)
        return {k: v * 0 for k, v in c.items()} if empty else c

    def _drop_encoder_grads(self) -> None:
        if self._frozen and self.world_size > 1:
            for p in self._encoder_params:
                p.grad = None

    def _cycle(self, batch_size: int, seed: int, kw: Dict[str, Any]):
        """Endless minibatches of the training set (``kw``: subset, groups,
        max_frames), reshuffled at every pass with a seed derived from
        ``seed``, so a run's order depends only on (train.seed, epoch)."""
        k = 0
        while True:
            yield from self.train.minibatches(batch_size, seed=seed * 7919 + k, rank=self.rank,
                                              world_size=self.world_size, **kw)
            k += 1

    def best_record(self) -> Dict[str, Any]:
        """The epoch final.pt is taken from: the lowest validation loss of
        the main task; the last epoch without a validation set, or when
        the main task is not trained (train.main_weight 0: its validation
        loss says nothing of the auxiliary heads)."""
        if (self.valid is None or not self.history or "valid_loss" not in self.history[0]
                or self.cfg["train"]["main_weight"] == 0):
            return self.history[-1]
        return min(self.history, key=lambda r: r["valid_loss"])

    def _epochs_since_best(self) -> int:
        return self.history[-1]["epoch"] - self.best_record()["epoch"]

    def _save_epoch(self, epoch: int) -> None:
        st = self.state(epoch)
        _atomic_save(st, self.exp / f"epoch-{epoch + 1}.pt")
        _atomic_save(st, self.exp / "checkpoint.pt")
        best = self.best_record()
        shutil.copyfile(self.exp / f"epoch-{best['epoch']}.pt", self.exp / "best.pt.tmp")
        os.replace(self.exp / "best.pt.tmp", self.exp / "best.pt")
        with atomic_open(self.exp / "history.json") as f:
            json.dump(self.history, f, indent=1)
        plot_history(self.history, self.exp / "train_curve.png")


def plot_history(history: list, path: PathLike) -> None:
    """Loss (train, valid) and valid frame accuracy (CTC: greedy unit error
    rate) per epoch, and the auxiliary losses, as a PNG."""
    from ..plot import save, subplots

    ep = [r["epoch"] for r in history]
    tasks = [k[len("train_"):-len("_loss")] for k in (history[0] if history else {})
             if k.startswith("train_") and k.endswith("_loss") and k != "train_loss"]
    fig, ax = subplots(1, 2 + bool(tasks), figsize=(9 + 4 * bool(tasks), 3.5))
    ax[0].plot(ep, [r["train_loss"] for r in history], "o-", label="train")
    if history and "valid_loss" in history[0]:
        ax[0].plot(ep, [r["valid_loss"] for r in history], "s-", label="valid")
        ax[1].plot(ep, [100 * (r["valid_ter"] if "valid_ter" in r else r["valid_acc"]) for r in history], "s-",
                   color="C1")
    ax[0].set_xlabel("epoch")
    ctc = bool(history) and "valid_ter" in history[0]
    ax[0].set_ylabel("CTC loss (nats, model.ctc_norm)" if ctc else "cross-entropy (nats/frame)")
    ax[0].legend()
    ax[1].set_xlabel("epoch")
    ax[1].set_ylabel("valid greedy unit error rate (%)" if ctc else "valid frame accuracy (%)")
    for i, t in enumerate(tasks):
        ax[2].plot(ep, [r[f"train_{t}_loss"] for r in history], "o-", color=f"C{2 + i}", label=f"{t} train")
        if f"valid_{t}_loss" in history[0]:
            ax[2].plot(ep, [r[f"valid_{t}_loss"] for r in history], "s--", color=f"C{2 + i}", label=f"{t} valid")
    if tasks:
        ax[2].set_xlabel("epoch")
        ax[2].set_ylabel("auxiliary loss (per frame)")
        ax[2].legend()
    for a in ax:
        a.grid(alpha=0.3)
    save(fig, path)
