"""Shared encoders: stacks of layers that output heads can fork from.

Every encoder has ``layers`` (the shared layers, numbered 1..L by the task
registry's ``fork``), ``output_dims`` (the size of each layer's output),
``subsampling`` (input frames per output frame) and

- ``forward(x, upto=None, lengths=None)``: ``x (B, T, D) float32`` ->
  the list of the computed layers' outputs ``(B, T_i, output_dims[i])``;
  ``lengths (B,) int64`` are the valid input frames of each row (None: all
  ``T``); padded positions never change valid outputs, so a batch gives
  the outputs of each of its utterances alone;
- ``output_lengths(lengths, layer)``: the valid frames after layer
  ``layer`` (1-based).

Encoders (``model.encoder`` in the training config):

- ``lstmp``: unidirectional LSTMs with a recurrent projection (seed 000,
  Sak et al. 2014), :class:`mtlasr.nnet.model.LstmTrunk`.
- ``conv_blstm``: a convolutional front end (the "feature transformation"
  Conv. layers of seed 004, Hayakawa et al., sec. 2.1 and Fig. 3) counted
  as shared layer 1, then ``num_layers`` bidirectional LSTMs.
- ``glu_conv``: 1-D gated convolutions (Dauphin et al. 2017, GLU) with weight
  normalisation (Salimans and Kingma 2016) and dropout after every layer
  (seed 002, Adi et al., sec. 4.1; 17 layers there).
- ``wav2vec2``: a wav2vec2 network on the framed waveform (seed 003,
  :class:`mtlasr.nnet.wav2vec2.Wav2Vec2Encoder`): layer 1 the CNN and
  projection, then one layer per transformer layer.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import torch
from torch import nn

ENCODERS = ("lstmp", "conv_blstm", "glu_conv", "wav2vec2")


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """``(B, max_len)`` bool, True at the valid frames ``t < lengths[b]``."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def _strided_lengths(lengths: torch.Tensor, strides: Sequence[int]) -> torch.Tensor:
    # a convolution with kernel 3, padding 1 and stride s keeps ceil(T / s) frames
    for s in strides:
        lengths = torch.div(lengths + s - 1, s, rounding_mode="floor")
    return lengths


def _time_strides(subsampling: int, num_convs: int) -> List[int]:
    """Split a subsampling factor (1, 2, 4, 8, ...) into per-layer time strides of 1 or 2."""
    if subsampling < 1 or subsampling & (subsampling - 1):
        raise ValueError(f"model.subsampling: must be a power of 2, got {subsampling}")
    n2 = subsampling.bit_length() - 1
    if n2 > num_convs:
        raise ValueError(f"model.subsampling: {subsampling} needs {n2} conv layers with stride 2, "
                         f"model.conv_channels has {num_convs}")
    return [2] * n2 + [1] * (num_convs - n2)


class ConvFrontEnd(nn.Module):
    """2-D convolutions over (time, frequency), then a linear map to ``out_dim``.

    Each conv layer: 3x3 kernel, padding 1, stride (s_t, 2) (time stride from
    ``subsampling``, frequency always halved), ReLU. Seed 004 Fig. 3 (Conv.
    layers feeding the BiLSTMs and the GRL sub-task networks).

    Shapes: ``(B, T, D) -> (B, ceil(T / subsampling), out_dim)``.
    """

    def __init__(self, input_dim: int, channels: Sequence[int], out_dim: int, subsampling: int,
                 dropout: float = 0.0):
        super().__init__()
        self.strides = _time_strides(subsampling, len(channels))
        convs: List[nn.Module] = []
        c_in, f = 1, input_dim
        for c, s in zip(channels, self.strides):
            convs.append(nn.Conv2d(c_in, c, 3, stride=(s, 2), padding=1))
            c_in, f = c, (f + 1) // 2
        self.convs = nn.ModuleList(convs)
        self.proj = nn.Linear(c_in * f, out_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        if lengths is not None:  # zero the padding so that it reads as the convolution's own padding
            x = x * length_mask(lengths, x.shape[1]).unsqueeze(-1).to(x.dtype)
        h = x.unsqueeze(1)
        for conv, s in zip(self.convs, self.strides):
            h = torch.relu(conv(h))
            if lengths is not None:
                lengths = _strided_lengths(lengths, [s])
                h = h * length_mask(lengths, h.shape[2])[:, None, :, None].to(h.dtype)
        b, c, t, f = h.shape
        return self.dropout(torch.relu(self.proj(h.transpose(1, 2).reshape(b, t, c * f))))


class ConvBlstmEncoder(nn.Module):
    """Seed 004's encoder: conv front end (layer 1) + ``num_layers`` BiLSTMs.

    Args:
      input_dim: feature dimension D (40 log-mel filterbanks in seed 004).
      num_layers: BiLSTM layers (4 in seed 004).
      cell_dim: LSTM cells per direction (each BiLSTM outputs 2 * cell_dim).
      conv_channels: channels of the conv layers; conv_dim: front-end output size.
      subsampling: time subsampling of the front end (1, 2, 4, ...).
      dropout: after every layer (0.2 in seed 004 Table 2).
    Padded frames are skipped with packed sequences, so the backward
    direction starts at each utterance's own last frame.
    """

    def __init__(self, input_dim: int, num_layers: int = 4, cell_dim: int = 320,
                 conv_channels: Sequence[int] = (32, 32), conv_dim: int = 256, subsampling: int = 4,
                 dropout: float = 0.0):
        super().__init__()
        self.subsampling = subsampling
        front = ConvFrontEnd(input_dim, conv_channels, conv_dim, subsampling, dropout)
        dims = [conv_dim] + [2 * cell_dim] * num_layers
        self.layers = nn.ModuleList([front] + [
            nn.LSTM(dims[i], cell_dim, batch_first=True, bidirectional=True) for i in range(num_layers)])
        self.output_dims = dims
        self.dropout = nn.Dropout(dropout)

    def output_lengths(self, lengths: torch.Tensor, layer: int) -> torch.Tensor:
        return _strided_lengths(lengths, self.layers[0].strides)

    def forward(self, x: torch.Tensor, upto: Optional[int] = None,
                lengths: Optional[torch.Tensor] = None) -> List[torch.Tensor]:
        front = self.layers[0]
        h = front(x, lengths)
        outs = [h]
        out_len = None if lengths is None else self.output_lengths(lengths, 1)
        for layer in self.layers[1:upto]:
            if out_len is None:
                h, _ = layer(h)
            else:
                packed = nn.utils.rnn.pack_padded_sequence(h, out_len.cpu().clamp(min=1), batch_first=True,
                                                           enforce_sorted=False)
                h, _ = layer(packed)
                h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=outs[0].shape[1])
            h = self.dropout(h)
            outs.append(h)
        return outs


class GluConv(nn.Module):
    """One gated convolution layer: weight-normalised Conv1d to 2C channels,
    GLU (a * sigmoid(b), Dauphin et al. 2017 eq. 1), dropout.

    Shapes: ``(B, T, D) -> (B, ceil(T / stride), C)``; "same" padding
    (kernel // 2 on each side; odd kernels).
    """

    def __init__(self, input_dim: int, channels: int, kernel: int, stride: int = 1, dropout: float = 0.0):
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError(f"model.kernel: gated convolutions need an odd kernel width, got {kernel}")
        self.conv = nn.utils.parametrizations.weight_norm(
            nn.Conv1d(input_dim, 2 * channels, kernel, stride=stride, padding=kernel // 2))
        self.stride = stride
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(nn.functional.glu(self.conv(x.transpose(1, 2)), dim=1).transpose(1, 2))


class GluConvEncoder(nn.Module):
    """Seed 002's Gated ConvNet: ``num_layers`` :class:`GluConv` layers of
    ``channels`` maps and width ``kernel``; the first has time stride
    ``subsampling``. Padded frames are zeroed after every layer, so a
    batched utterance sees the same zero padding as alone.
    """

    def __init__(self, input_dim: int, num_layers: int = 8, channels: int = 256, kernel: int = 5,
                 subsampling: int = 1, dropout: float = 0.0):
        super().__init__()
        self.subsampling = subsampling
        dims = [input_dim] + [channels] * num_layers
        self.layers = nn.ModuleList(GluConv(dims[i], channels, kernel, subsampling if i == 0 else 1, dropout)
                                    for i in range(num_layers))
        self.output_dims = dims[1:]

    def output_lengths(self, lengths: torch.Tensor, layer: int) -> torch.Tensor:
        return _strided_lengths(lengths, [self.subsampling])

    def forward(self, x: torch.Tensor, upto: Optional[int] = None,
                lengths: Optional[torch.Tensor] = None) -> List[torch.Tensor]:
        outs = []
        h = x
        if lengths is not None:
            h = h * length_mask(lengths, h.shape[1]).unsqueeze(-1).to(h.dtype)
            lengths = self.output_lengths(lengths, 1)
        for layer in self.layers[:upto]:
            h = layer(h)
            if lengths is not None:
                h = h * length_mask(lengths, h.shape[1]).unsqueeze(-1).to(h.dtype)
            outs.append(h)
        return outs


def build_encoder(m: dict, input_dim: int) -> nn.Module:
    """The encoder of a config's ``model`` section.

    Raises: ValueError for an unknown ``model.encoder``.
    """
    from .model import LstmTrunk

    kind = m["encoder"]
    if kind == "lstmp":
        return LstmTrunk(input_dim, m["num_layers"], m["cell_dim"], m["proj_dim"], m["dropout"], m["lstm_impl"])
    if kind == "conv_blstm":
        return ConvBlstmEncoder(input_dim, m["num_layers"], m["cell_dim"], m["conv_channels"], m["conv_dim"],
                                m["subsampling"], m["dropout"])
    if kind == "glu_conv":
        return GluConvEncoder(input_dim, m["num_layers"], m["cell_dim"], m["kernel"], m["subsampling"],
                              m["dropout"])
    if kind == "wav2vec2":
        from .wav2vec2 import Wav2Vec2Encoder, load_wav2vec2

        if input_dim != m["samples_per_frame"]:
            raise ValueError(f"model.encoder wav2vec2: the features have {input_dim} values per frame, "
                             f"model.samples_per_frame is {m['samples_per_frame']} (train it on framed waveforms: "
                             f"steps/make_mfcc.sh --raw-frames)")
        return Wav2Vec2Encoder(load_wav2vec2(m["w2v2_dir"] or None, m["w2v2_config"]), m["samples_per_frame"],
                               m["cls_token"], m["freeze_feature_encoder"])
    raise ValueError(f"model.encoder: unknown encoder '{kind}' ({', '.join(ENCODERS)})")
