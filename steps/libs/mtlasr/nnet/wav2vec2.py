"""A wav2vec2 encoder for the shared trainer (seed 003).

Seed 003 (Vaessen and van Leeuwen, "Multi-task learning of speech and
speaker recognition", Interspeech 2023, sec. 3.1 and Fig. 1-2): one
wav2vec2 network (Baevski et al., NeurIPS 2020) fine-tuned for speech
recognition (a CTC head on every output token) and speaker recognition (a
pooled speaker embedding and an AAM-softmax head) at once.

The network is ``transformers``' ``Wav2Vec2Model``, built

- from a local checkpoint directory (``config.json`` plus
  ``model.safetensors`` or ``pytorch_model.bin``, as ``save_pretrained``
  writes it), never from the hub (``local_files_only``; see
  :func:`load_wav2vec2` and :func:`check_checkpoint_dir`), or
- from a configuration with random weights (``model.w2v2_config``: the
  ``Wav2Vec2Config`` fields to change, e.g. a tiny network for tests).

Input: the shared trainer exchanges features as Kaldi matrices of 10 ms
frames, so the waveform is stored framed, ``(T, S)`` with ``S`` samples per
frame (160 at 16 kHz; ``mtlasr.bin.compute_raw_frames``), and this encoder
reads ``(B, T, S)`` and joins each row back into ``T * S`` samples. Each
utterance is normalised to zero mean and unit variance over its own
samples (wav2vec2's feature extractor, ``do_normalize``).

Shared layers, numbered as the task registry's ``fork`` counts them:
layer 1 is the CNN feature encoder plus the feature projection (output
``hidden_size``, one frame per 20 ms for the standard conv strides),
layers 2..N+1 are the N transformer layers (for a "stable layer norm"
network the last one includes the encoder's final layer norm).

Padding never changes the valid outputs (the encoder contract of
:mod:`mtlasr.nnet.encoders`): the CNN runs on each utterance alone (its
group norm would otherwise see the padding), padded frames are zeroed
before the positional convolution, and attention never looks at them.

The CLS token of seed 003's first+cls pooling (sec. 3.1.1, after Peng et
al.): with ``cls_token=True`` a vector of ones is put in front of the
projected features before the transformer; the transformer layers' outputs
are returned without it, and ``forward(..., return_prefix=True)`` also
returns its output at each layer (``(B, H)``, the speaker embedding of
first+cls pooling).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

logger = logging.getLogger(__name__)

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def _transformers():
    try:
        import transformers
    except ImportError as e:  # pragma: no cover  (requirements.txt pins it)
        raise ImportError("the wav2vec2 encoder needs transformers (pip install -r requirements.txt)") from e
    return transformers


def check_checkpoint_dir(path: Union[str, Path]) -> Dict[str, Any]:
    """Check a local wav2vec2 checkpoint directory without building the model.

    Args:
      path: a directory with ``config.json`` and one of
        ``model.safetensors`` / ``pytorch_model.bin``.
    Returns: ``{"config": dict, "weights": Path, "weight_bytes": int}``.
    Raises:
      FileNotFoundError: the directory, its config.json or its weights are
        missing (naming what is missing).
      ValueError: config.json is not JSON or not a wav2vec2 config
        (``model_type``), naming the file.
    """
    d = Path(path)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: no such checkpoint directory")
    cfg_path = d / "config.json"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path}: missing (a wav2vec2 checkpoint directory needs config.json "
                                "and its weights, as save_pretrained writes them)")
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{cfg_path}: not a JSON file ({e})") from None
    if not isinstance(cfg, dict) or cfg.get("model_type") != "wav2vec2":
        got = cfg.get("model_type") if isinstance(cfg, dict) else type(cfg).__name__
        raise ValueError(f"{cfg_path}: model_type is {got!r}, not 'wav2vec2'")
    weights = [d / w for w in WEIGHT_FILES if (d / w).is_file()]
    if not weights:
        raise FileNotFoundError(f"{d}: no weights ({' or '.join(WEIGHT_FILES)})")
    return {"config": cfg, "weights": weights[0], "weight_bytes": weights[0].stat().st_size}


def load_wav2vec2(w2v2_dir: Optional[str] = None, w2v2_config: Optional[Mapping[str, Any]] = None):
    """Build a ``transformers.Wav2Vec2Model``.

    Args:
      w2v2_dir: a local checkpoint directory (see
        :func:`check_checkpoint_dir`): its config and weights, read with
        ``local_files_only=True`` (nothing is downloaded). ``w2v2_config``
        may then override dropout-like fields (``layerdrop``,
        ``mask_time_prob``, ...), not the architecture.
      w2v2_config: without ``w2v2_dir``, ``Wav2Vec2Config`` fields for a
        randomly initialised network (the rest keep transformers'
        defaults, the wav2vec2-base architecture).
    Returns: the model, in training mode.
    Raises:
      FileNotFoundError / ValueError: see :func:`check_checkpoint_dir`.
      ValueError: weights that do not match the config (missing or
        unexpected tensors, or shapes), naming the directory; an override
        of an architecture field; an unknown config field.
    """
    tf = _transformers()
    overrides = dict(w2v2_config or {})
    if w2v2_dir:
        info = check_checkpoint_dir(w2v2_dir)
        arch = {"hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "conv_dim",
                "conv_kernel", "conv_stride", "num_conv_pos_embeddings", "num_conv_pos_embedding_groups",
                "feat_extract_norm", "do_stable_layer_norm", "conv_bias"}
        clash = sorted(k for k in overrides if k in arch and overrides[k] != info["config"].get(k))
        if clash:
            raise ValueError(f"model.w2v2_config: {', '.join(clash)} would change the architecture of the "
                             f"checkpoint in {w2v2_dir} (only dropout-like fields may be overridden)")
        config = tf.Wav2Vec2Config.from_pretrained(w2v2_dir, local_files_only=True, **overrides)
        try:
            model, report = tf.Wav2Vec2Model.from_pretrained(w2v2_dir, config=config, local_files_only=True,
                                                             output_loading_info=True)
        except (RuntimeError, ValueError, OSError) as e:
            raise ValueError(f"{w2v2_dir}: its weights do not load into the network its config.json "
                             f"describes: {str(e).splitlines()[0][:300]}") from None
        bad = {k: v for k, v in report.items() if v and k in ("missing_keys", "unexpected_keys",
                                                              "mismatched_keys", "error_msgs")}
        # the pre-training heads (quantizer, project_q, ...) are expected extras
        bad.pop("unexpected_keys", None)
        if bad:
            what = "; ".join(f"{k}: {sorted(map(str, v))[:5]}" for k, v in bad.items())
            raise ValueError(f"{w2v2_dir}: weights do not match config.json ({what})")
        model.train()
        return model
    known = set(tf.Wav2Vec2Config().to_dict())
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"model.w2v2_config: unknown Wav2Vec2Config field(s) {', '.join(unknown)}")
    return tf.Wav2Vec2Model(tf.Wav2Vec2Config(**overrides))


def normalise_waveform(wav: torch.Tensor, lengths: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Zero mean, unit variance per row over its valid samples (wav2vec2's
    feature extractor with ``do_normalize``: (x - mean) / sqrt(var + 1e-7));
    padded samples are set to 0.

    Args: wav ``(B, N) float32``; lengths ``(B,) int64`` valid samples.
    Returns: ``(B, N) float32``.
    """
    mask = torch.arange(wav.shape[1], device=wav.device)[None, :] < lengths[:, None]
    n = lengths.clamp(min=1).to(wav.dtype)[:, None]
    w = wav * mask
    mean = w.sum(1, keepdim=True) / n
    var = (((wav - mean) * mask) ** 2).sum(1, keepdim=True) / n
    return ((wav - mean) / torch.sqrt(var + eps)) * mask


class _FeatureStage(nn.Module):
    """Shared layer 1: CNN feature encoder + feature projection (one
    utterance at a time, so that padding never reaches the group norm)."""

    def __init__(self, w2v2):
        super().__init__()
        self.feature_extractor = w2v2.feature_extractor
        self.feature_projection = w2v2.feature_projection


class Wav2Vec2Encoder(nn.Module):
    """wav2vec2 as a shared encoder (see the module docstring).

    Args:
      w2v2: a ``transformers.Wav2Vec2Model`` (:func:`load_wav2vec2`); its
        feature encoder, projection and transformer are used (no
        quantizer, adapter or masking).
      samples_per_frame: S, waveform samples per input frame (160 = 10 ms
        at 16 kHz).
      cls_token: put a CLS token (all ones) in front of the transformer
        input (seed 003's first+cls pooling).
      freeze_feature_encoder: keep the CNN fixed (seed 003 sec. 4.2: "the
        feature extractor CNN is always frozen"; leave it trainable for a
        network that starts from random weights).

    Attributes: ``layers`` (N + 1 modules), ``output_dims``,
    ``subsampling`` (input frames per output frame, e.g. 2 for 320-sample
    conv strides and S = 160; only a guide: :meth:`output_lengths` is exact).
    """

    def __init__(self, w2v2, samples_per_frame: int = 160, cls_token: bool = False,
                 freeze_feature_encoder: bool = True):
        super().__init__()
        cfg = w2v2.config
        self.config = cfg
        self.samples_per_frame = int(samples_per_frame)
        self.cls_token = bool(cls_token)
        self.stable_layer_norm = bool(cfg.do_stable_layer_norm)
        enc = w2v2.encoder
        self.pos_conv_embed = enc.pos_conv_embed
        self.layer_norm = enc.layer_norm
        self.dropout = enc.dropout
        self.layers = nn.ModuleList([_FeatureStage(w2v2), *enc.layers])
        self.output_dims = [cfg.hidden_size] * len(self.layers)
        stride = 1
        for s in cfg.conv_stride:
            stride *= s
        self.subsampling = max(1, stride // self.samples_per_frame)
        self.freeze_feature_encoder = bool(freeze_feature_encoder)
        if self.freeze_feature_encoder:
            for p in self.layers[0].feature_extractor.parameters():
                p.requires_grad_(False)

    def sample_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Input frames ``(B,)`` -> waveform samples ``(B,)``."""
        return lengths * self.samples_per_frame

    def _conv_lengths(self, samples: torch.Tensor) -> torch.Tensor:
        for k, s in zip(self.config.conv_kernel, self.config.conv_stride):
            samples = torch.div(samples - k, s, rounding_mode="floor") + 1
        return samples.clamp(min=0)

    def output_lengths(self, lengths: torch.Tensor, layer: int) -> torch.Tensor:
        """Valid output tokens ``(B,)`` of any layer (CLS not counted) for
        input frames ``lengths (B,)``: the conv stack's
        floor((n - kernel) / stride) + 1 per conv layer."""
        return self._conv_lengths(self.sample_lengths(lengths))

    def forward(self, x: torch.Tensor, upto: Optional[int] = None, lengths: Optional[torch.Tensor] = None,
                return_prefix: bool = False, keep_states: Sequence[int] = ()):
        """Args:
          x: ``(B, T, S) float32`` framed waveform (S = samples_per_frame).
          upto: stop after this many shared layers (default all).
          lengths: ``(B,) int64`` valid frames (None: all T).
          return_prefix: also return the CLS output of every layer.
          keep_states: layer numbers (>= 2) whose inner state to return as
            well, for :meth:`run_branch`.
        Returns: the computed layers' outputs ``(B, T', H)`` (T' the most
          valid tokens in the batch; positions past a row's
          :meth:`output_lengths` are zero); with ``return_prefix``, also the
          list of CLS outputs ``(B, H)`` (None for layer 1 or without CLS);
          with ``keep_states``, also layer -> state.
        Raises: ValueError when the last dimension is not S, or an
          utterance is shorter than the conv stack's receptive field.
        """
        b, t, s = x.shape
        if s != self.samples_per_frame:
            raise ValueError(f"wav2vec2 encoder: input frames have {s} samples, expected {self.samples_per_frame} "
                             "(model.samples_per_frame; are the features raw waveform frames?)")
        if lengths is None:
            lengths = torch.full((b,), t, dtype=torch.int64, device=x.device)
        n_samp = self.sample_lengths(lengths)
        wav = normalise_waveform(x.reshape(b, t * s), n_samp)
        n_out = self.output_lengths(lengths, 1)
        if int(n_out.min()) < 1:
            raise ValueError(f"wav2vec2 encoder: an utterance of {int(lengths.min())} frames is shorter than "
                             "the feature encoder's receptive field")
        stage = self.layers[0]
        feats = []
        for i in range(b):  # one utterance at a time: its own group-norm statistics
            f = stage.feature_extractor(wav[i: i + 1, : int(n_samp[i])])  # (1, C, T'_i)
            feats.append(f.transpose(1, 2)[0])
        t_out = int(n_out.max())
        padded = wav.new_zeros(b, t_out, feats[0].shape[1])
        for i, f in enumerate(feats):
            padded[i, : f.shape[0]] = f[:t_out]
        h, _ = stage.feature_projection(padded)
        mask = torch.arange(t_out, device=x.device)[None, :] < n_out[:, None]
        h = h * mask.unsqueeze(-1)
        outs: List[torch.Tensor] = [h]
        prefix: List[Optional[torch.Tensor]] = [None]
        states: Dict[int, Tuple[torch.Tensor, torch.Tensor]] = {}
        n_layers = len(self.layers) if upto is None else upto
        if n_layers > 1:
            if self.cls_token:
                h = torch.cat([h.new_ones(b, 1, h.shape[2]), h], 1)
                mask = torch.cat([mask.new_ones(b, 1), mask], 1)
            h = h + self.pos_conv_embed(h)
            if not self.stable_layer_norm:
                h = self.layer_norm(h)
            h = self.dropout(h)
            o, pr, states = self._run(h, mask, 2, self.layers[1:n_layers], self.layer_norm, set(keep_states))
            outs += o
            prefix += pr
        out = (outs,)
        if return_prefix:
            out += (prefix,)
        if keep_states:
            out += (states,)
        return out if len(out) > 1 else outs

    def _run(self, h, mask, first: int, layers, final_norm, keep=()):
        """Run transformer ``layers`` numbered from ``first`` on the state ``h``
        ``(B, p + T', H)`` (p = 1 with a CLS token) with its valid-position
        mask; returns (outputs without the CLS, CLS outputs or None, kept
        states ``layer -> (h, mask)``)."""
        p = 1 if self.cls_token else 0
        # additive attention mask (B, 1, 1, T): padded keys get -inf-like scores
        attn = (~mask)[:, None, None, :].to(h.dtype) * torch.finfo(h.dtype).min
        outs, prefix, states = [], [], {}
        for li, layer in enumerate(layers, first):
            h = layer(h, attention_mask=attn)
            if isinstance(h, tuple):
                h = h[0]
            if li in keep:
                states[li] = (h, mask)
            out = h
            if self.stable_layer_norm and li == len(self.layers):
                out = final_norm(h)
            out = out * mask.unsqueeze(-1)
            outs.append(out[:, p:])
            prefix.append(out[:, 0] if p else None)
        return outs, prefix, states

    def make_branch(self, at: int) -> nn.ModuleDict:
        """A copy of the shared layers ``at + 1 .. L`` (and, for a stable
        layer norm network, of the final layer norm), initialised as they are
        now: one task's private branch (seed 003 sec. 3.1.2, the branched
        encoder; both branches start from the same weights).

        Raises: ValueError unless 2 <= at < L (at least one shared and one
        private transformer layer)."""
        import copy

        if not 2 <= at < len(self.layers):
            raise ValueError(f"a branch after layer {at}: must be in 2..{len(self.layers) - 1} (at least one "
                             f"shared and one private transformer layer; layer 1 is the CNN)")
        return nn.ModuleDict({"layers": copy.deepcopy(self.layers[at:]),
                              "final_norm": copy.deepcopy(self.layer_norm)})

    def run_branch(self, state, branch: nn.ModuleDict, at: int, upto: int):
        """Layers ``at + 1 .. upto`` of a :meth:`make_branch` copy on the state
        kept after shared layer ``at`` (``forward(..., keep_states=[at])``).
        Returns (outputs ``(B, T', H)`` of layers at+1..upto, CLS outputs)."""
        h, mask = state
        outs, prefix, _ = self._run(h, mask, at + 1, branch["layers"][: upto - at], branch["final_norm"])
        return outs, prefix
