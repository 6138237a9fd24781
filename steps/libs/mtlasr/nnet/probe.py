"""Probing the speaker information of a frozen acoustic model, layer by layer.

Seed 002 (Adi et al., "To reverse the gradient or not: an empirical
comparison of adversarial and multi-task learning in speech recognition",
sec. 4.2, Fig. 2): a trained network is frozen, the representation of one
of its layers is extracted for every utterance, and a separate classifier
is trained on that representation alone to identify the speaker. Its
accuracy on held-out utterances of the same (seen) speakers measures how
much speaker identity the layer still encodes; comparing a baseline with
multi-task (speaker loss) and adversarial (reversed speaker loss) models
shows whether the auxiliary loss pushed the trunk towards or away from
speaker information.

Differences from seed 002: there the probe is the speaker branch itself (a
gated convolution of width 5 with 200 maps, pooling over time, a linear
layer; 10 epochs). Here the probe is smaller, as befits small corpora: the
frame representations of the layer are mean-pooled over the utterance
(seed 002's LogSumExp pooling as tau -> 0) and classified by a linear
layer or a one-hidden-layer MLP, trained full-batch. A frame-level variant
(every frame classified, the utterance decided by the summed frame
log-probabilities) is available with ``pooling="frame"``.

Each frame's representation is the one the network computes at decoding
time: for a frame-level (cross-entropy) model, utterances are cut into the
training/decoding chunks (:mod:`mtlasr.nnet.data`, left context and label
delay included) and the labelled output positions are stitched back
together; a CTC model (``model.criterion: ctc``) reads each utterance whole,
and a subsampling layer gives fewer frames than the input.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import ChunkSpec, utterance_output, utterance_input
from .tasks import resolve_fork

logger = logging.getLogger(__name__)

POOLINGS = ("mean", "frame")


def resolve_layers(specs: Union[str, Iterable[Union[str, int]]], num_layers: int) -> List[int]:
    """1-based layer indices from a spec such as ``"all"``, ``"1 2 3"`` or
    ``"first mid last"`` (names as in :func:`mtlasr.nnet.tasks.resolve_fork`:
    seed 002's IN, MID, OUT). ``0`` or ``input`` is the network input (the
    normalised features), a reference point not included in ``all``.
    Duplicates are removed; the result is sorted.

    Raises: ValueError naming a layer that does not exist in a model of
    ``num_layers`` shared layers.
    """
    tokens = specs.split() if isinstance(specs, str) else list(specs)
    if not tokens:
        raise ValueError("no layers given")
    out = set()
    for tok in tokens:
        if tok == "all":
            out.update(range(1, num_layers + 1))
            continue
        if tok in ("input", "0", 0):
            out.add(0)
            continue
        val: Union[str, int] = tok
        if isinstance(tok, str) and tok.lstrip("-").isdigit():
            val = int(tok)
        try:
            out.add(resolve_fork(val, num_layers, "probe"))
        except ValueError:
            raise ValueError(f"layer {tok!r} does not exist: the model has {num_layers} shared layers "
                             f"(use all, first, mid, last, input or 0..{num_layers})") from None
    return sorted(out)


def layer_representations(model: nn.Module, cfg: Mapping, feats: Mapping[str, np.ndarray],
                          layers: Sequence[int], device: Union[str, torch.device] = "cpu"
                          ) -> Dict[int, Dict[str, np.ndarray]]:
    """Per-frame outputs of chosen shared layers of a frozen acoustic model.

    Args:
      model: an :class:`mtlasr.nnet.model.AcousticModel` (e.g. from
        :func:`mtlasr.nnet.build.load_for_inference`); run in eval mode
        under ``torch.no_grad`` (its mode is restored afterwards).
      cfg: its config; ``cfg["chunk"]`` gives the chunk geometry of a
        frame-level model; a CTC model (``cfg["model"]["criterion"] ==
        "ctc"``) reads whole utterances.
      feats: utterance -> ``(T, D) float32`` features, normalised as in
        training (``cfg["features"]``).
      layers: 1-based layer indices; 0 gives the input features themselves.
      device: where the model runs; one utterance (all its chunks) per batch.
    Returns: layer -> utterance -> ``(T_l, H_l) float32`` (H_l = the
      layer's output size; T_l = T, or for CTC encoders that subsample,
      the layer's output frames), in the order of ``feats``.
    Raises: ValueError for a layer outside 0..num_layers or an utterance
      with no frames.
    """
    num_layers = len(model.trunk.layers)
    for lay in layers:
        if isinstance(lay, bool) or not isinstance(lay, (int, np.integer)) or not 0 <= lay <= num_layers:
            raise ValueError(f"layer {lay!r} does not exist: the model has {num_layers} shared layers")
    whole = cfg.get("model", {}).get("criterion") == "ctc"
    spec = None if whole else ChunkSpec(**cfg["chunk"])
    upto = max(layers)
    device = torch.device(device)
    out: Dict[int, Dict[str, np.ndarray]] = {int(lay): {} for lay in layers}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for utt, x in feats.items():
                t = x.shape[0]
                if t == 0:
                    raise ValueError(f"utterance {utt} has no frames")
                x32 = np.asarray(x, dtype=np.float32)
                if upto == 0:
                    outs = []
                elif whole:
                    outs = [h[0] for h in model.trunk(torch.from_numpy(x32)[None].to(device), upto=upto,
                                                     lengths=torch.tensor([t], device=device))]
                else:
                    outs = [utterance_output(h, spec, t) for h in
                            model.trunk(utterance_input(x32, spec).to(device), upto=upto)]
                for lay in out:
                    out[lay][utt] = np.array(x32) if lay == 0 else outs[lay - 1].float().cpu().numpy()
    finally:
        model.train(was_training)
    return out


def split_by_speaker(utts: Sequence[str], utt2spk: Mapping[str, str], held_out_per_speaker: int = 2,
                     seed: int = 0) -> Tuple[List[str], List[str]]:
    """Hold out utterances of every speaker for testing a speaker probe.

    The probe is speaker identification on seen speakers (seed 002 sec. 4.2):
    for every speaker, ``held_out_per_speaker`` of its utterances (chosen
    at random with ``seed``) go to the test part and the rest to the
    training part, so both parts have the same speakers. A speaker with
    fewer than ``held_out_per_speaker + 1`` utterances is used for training
    only; how many there are is logged.

    Returns: ``(train_utts, test_utts)``, each in the order of ``utts``.
    Raises: KeyError naming an utterance without a speaker; ValueError for a
      negative count.
    """
    if held_out_per_speaker < 0:
        raise ValueError(f"held_out_per_speaker must be >= 0, got {held_out_per_speaker}")
    spk2utt: Dict[str, List[str]] = {}
    for u in utts:
        if u not in utt2spk:
            raise KeyError(f"utterance {u} has no speaker in utt2spk")
        spk2utt.setdefault(utt2spk[u], []).append(u)
    rng = np.random.default_rng(seed)
    test = set()
    train_only = []
    for spk in sorted(spk2utt):
        mine = sorted(spk2utt[spk])
        if len(mine) < held_out_per_speaker + 1:
            train_only.append(spk)
            continue
        pick = rng.permutation(len(mine))[:held_out_per_speaker]
        test.update(mine[i] for i in pick)
    if train_only:
        logger.warning("%d of %d speakers have fewer than %d utterances and are used for training only: %s",
                       len(train_only), len(spk2utt), held_out_per_speaker + 1,
                       " ".join(train_only[:10]) + (" ..." if len(train_only) > 10 else ""))
    return [u for u in utts if u not in test], [u for u in utts if u in test]


def _probe_inputs(xs: Sequence[np.ndarray], pooling: str) -> Tuple[np.ndarray, np.ndarray]:
    """Rows to classify and, for each row, the index of its utterance.
    ``xs``: per utterance ``(T_i, H)`` (or ``(H,)``, one frame)."""
    if pooling not in POOLINGS:
        raise ValueError(f"unknown probe pooling '{pooling}' ({' or '.join(POOLINGS)})")
    mats = []
    for i, x in enumerate(xs):
        x = np.asarray(x, dtype=np.float32)
        x = x[None] if x.ndim == 1 else x
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"probe input {i}: expected a (T, H) matrix with T > 0, got shape {x.shape}")
        mats.append(x)
    if not mats:
        raise ValueError("no probe inputs")
    if len({m.shape[1] for m in mats}) != 1:
        raise ValueError(f"probe inputs of different dimensions: {sorted({m.shape[1] for m in mats})}")
    if pooling == "mean":
        return np.stack([m.mean(0) for m in mats]), np.arange(len(mats))
    owner = np.concatenate([np.full(m.shape[0], i) for i, m in enumerate(mats)])
    return np.concatenate(mats), owner


@dataclass
class Probe:
    """A trained speaker probe: standardisation, classifier, pooling mode."""

    net: nn.Module
    mean: np.ndarray
    std: np.ndarray
    pooling: str
    num_classes: int

    def log_probs(self, xs: Sequence[np.ndarray]) -> np.ndarray:
        """Utterance scores ``(N, num_classes)``: log-softmax of the mean-pooled
        input, or (frame pooling) the sum of the frames' log-softmax."""
        rows, owner = _probe_inputs(xs, self.pooling)
        z = torch.from_numpy((rows - self.mean) / self.std)
        with torch.no_grad():
            lp = F.log_softmax(self.net(z), dim=-1).double().numpy()
        out = np.zeros((int(owner.max()) + 1, self.num_classes))
        np.add.at(out, owner, lp)
        return out

    def predict(self, xs: Sequence[np.ndarray]) -> np.ndarray:
        """Class index per utterance ``(N,) int64``."""
        return self.log_probs(xs).argmax(1)


def train_probe(train_x: Sequence[np.ndarray], train_y: Sequence[int], num_classes: int, hidden: int = 0,
                epochs: int = 300, lr: float = 0.01, seed: int = 0, pooling: str = "mean",
                weight_decay: float = 1e-3) -> Probe:
    """Train a speaker classifier on frozen layer representations.

    Args:
      train_x: per training utterance, its frame representations ``(T_i, H)``.
      train_y: class index per utterance (0..num_classes-1).
      hidden: 0 for a linear classifier (softmax regression), else the
        size of one ReLU hidden layer.
      epochs, lr: full-batch Adam steps and step size.
      seed: initialisation seed; training is deterministic given it.
      pooling: ``mean`` (default, seed 002's utterance-level decision):
        one input per utterance, the mean of its frames; ``frame``: every
        frame is a training example carrying its utterance's label (each
        utterance weighted equally), and an utterance is decided by the
        summed frame log-probabilities.
      weight_decay: L2 penalty on the weights (the training part is small).
    Inputs are standardised with the training part's mean and std (per
    dimension; a constant dimension is left unscaled).

    Returns: a :class:`Probe`.
    Raises: ValueError for mismatched lengths, labels out of range, an
      unknown pooling, a negative hidden size or an empty input.
    """
    y = np.asarray(train_y, dtype=np.int64)
    if len(train_x) != len(y):
        raise ValueError(f"{len(train_x)} inputs but {len(y)} labels")
    if num_classes < 1 or y.min(initial=0) < 0 or y.max(initial=0) >= num_classes:
        raise ValueError(f"labels must be in 0..{num_classes - 1}")
    if hidden < 0:
        raise ValueError(f"hidden must be >= 0, got {hidden}")
    rows, owner = _probe_inputs(train_x, pooling)
    mean = rows.mean(0)
    std = rows.std(0)
    std = np.where(std > 1e-6, std, 1.0).astype(np.float32)
    z = torch.from_numpy(((rows - mean) / std).astype(np.float32))
    target = torch.from_numpy(y[owner])
    counts = np.bincount(owner)
    weight = torch.from_numpy((1.0 / counts[owner] / len(counts)).astype(np.float32))
    dim = rows.shape[1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = (nn.Linear(dim, num_classes) if hidden == 0 else
               nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)))
    decay = [p for n, p in net.named_parameters() if n.endswith("weight")]
    other = [p for n, p in net.named_parameters() if not n.endswith("weight")]
    opt = torch.optim.Adam([{"params": decay, "weight_decay": weight_decay},
                            {"params": other, "weight_decay": 0.0}], lr=lr)
    net.train()
    for _ in range(epochs):
        opt.zero_grad()
        loss = (F.cross_entropy(net(z), target, reduction="none") * weight).sum()
        loss.backward()
        opt.step()
    net.eval()
    return Probe(net, mean.astype(np.float32), std, pooling, num_classes)


def probe_accuracy(probe: Probe, test_x: Sequence[np.ndarray], test_y: Sequence[int],
                   train_y: Sequence[int]) -> Dict[str, float]:
    """Speaker accuracy of a probe on held-out utterances, with chance levels.

    Returns: ``accuracy`` (fraction of test utterances whose speaker is
    recognised), ``n_test``, ``chance_uniform`` (1 / number of classes) and
    ``chance_majority`` (accuracy of always answering the most frequent
    training class).
    """
    ty = np.asarray(test_y, dtype=np.int64)
    if len(test_x) != len(ty) or len(ty) == 0:
        raise ValueError(f"{len(test_x)} test inputs and {len(ty)} labels (need as many, and at least one)")
    majority = int(np.bincount(np.asarray(train_y, dtype=np.int64), minlength=probe.num_classes).argmax())
    return {"accuracy": float(np.mean(probe.predict(test_x) == ty)), "n_test": int(len(ty)),
            "chance_uniform": 1.0 / probe.num_classes, "chance_majority": float(np.mean(ty == majority))}


def evaluate_layers(reps: Mapping[int, Mapping[str, np.ndarray]], utt2spk: Mapping[str, str],
                 seeds: Sequence[int] = (0, 1, 2), held_out_per_speaker: int = 2,
                 **train_opts) -> Dict[int, Dict[str, object]]:
    """Speaker-probe accuracy of every layer, over several seeds.

    Each seed draws its own held-out utterances (:func:`split_by_speaker`)
    and its own probe initialisation, so the spread over seeds covers both.

    Args:
      reps: layer -> utterance -> ``(T, H)`` (from :func:`layer_representations`).
      utt2spk: utterance -> speaker.
      train_opts: passed to :func:`train_probe` (hidden, epochs, lr, pooling, ...).
    Returns: layer -> ``{"accs": [per seed], "acc_mean", "acc_std"`` (sample
      std, 0 for one seed), ``"n_test", "n_speakers", "chance_uniform",
      "chance_majority"}`` (chance levels averaged over seeds).
    Raises: ValueError if a split leaves no test utterance.
    """
    out: Dict[int, Dict[str, object]] = {}
    for lay, table in reps.items():
        utts = list(table)
        accs, chance_u, chance_m = [], [], []
        n_test = n_spk = 0
        for seed in seeds:
            tr, te = split_by_speaker(utts, utt2spk, held_out_per_speaker, seed)
            if not te:
                raise ValueError(f"no test utterances: no speaker has more than {held_out_per_speaker} utterances")
            speakers = sorted({utt2spk[u] for u in tr})
            index = {s: i for i, s in enumerate(speakers)}
            ytr = [index[utt2spk[u]] for u in tr]
            yte = [index[utt2spk[u]] for u in te]
            probe = train_probe([table[u] for u in tr], ytr, len(speakers), seed=seed, **train_opts)
            res = probe_accuracy(probe, [table[u] for u in te], yte, ytr)
            accs.append(res["accuracy"])
            chance_u.append(res["chance_uniform"])
            chance_m.append(res["chance_majority"])
            n_test, n_spk = res["n_test"], len(speakers)
        out[lay] = {"accs": accs, "acc_mean": float(np.mean(accs)),
                    "acc_std": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
                    "n_test": n_test, "n_speakers": n_spk,
                    "chance_uniform": float(np.mean(chance_u)), "chance_majority": float(np.mean(chance_m))}
    return out


def combine_models(per_model: Sequence[Mapping[int, Mapping[str, object]]]) -> Dict[int, Dict[str, object]]:
    """Pool the probe results of several models of one system (training seeds).

    Args:
      per_model: one :func:`evaluate_layers` result per model, all probed on
        the same layers and data.
    Returns: layer -> the fields of :func:`evaluate_layers`, where ``accs``
      holds each model's mean over probe seeds and ``acc_mean`` / ``acc_std``
      are their mean and sample std (the spread over training seeds; for a
      single model the result is returned unchanged, its std being over probe
      seeds); ``probe_std`` is the mean within-model std over probe seeds and
      ``n_models`` the number of models.
    Raises: ValueError for no model or models probed on different layers.
    """
    if not per_model:
        raise ValueError("combine_models: no model")
    layers = set(per_model[0])
    for i, res in enumerate(per_model[1:], 1):
        if set(res) != layers:
            raise ValueError(f"combine_models: model {i} was probed on layers {sorted(res)}, "
                             f"model 0 on {sorted(layers)}")
    out: Dict[int, Dict[str, object]] = {}
    for lay in sorted(layers):
        rs = [res[lay] for res in per_model]
        means = [float(r["acc_mean"]) for r in rs]
        out[lay] = dict(rs[0])
        out[lay].update(n_models=len(rs), probe_std=float(np.mean([float(r["acc_std"]) for r in rs])))
        if len(rs) > 1:
            out[lay].update(accs=means, acc_mean=float(np.mean(means)), acc_std=float(np.std(means, ddof=1)))
    return out
