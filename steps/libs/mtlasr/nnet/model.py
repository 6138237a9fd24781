"""LSTM-HMM acoustic model with a shared LSTMP trunk and named output heads.

Seed 000 (Pironkov et al., "Multi-task learning for speech recognition
using i-vectors as auxiliary task", sec. 5.2): three unidirectional LSTM
layers of 1024 cells, each with a 256-dim linear recurrent projection (Sak
et al., 2014, the LSTMP; ``torch.nn.LSTM(proj_size=...)``), and a softmax
output over the pdfs (phone states). The trunk is kept as one LSTM module
per layer so that auxiliary heads can fork after any layer.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn


class LstmTrunk(nn.Module):
    """Stack of unidirectional LSTMP layers.

    Args:
      input_dim: feature dimension D.
      num_layers, cell_dim, proj_dim: layer count, LSTM cells, projection size
        (``proj_dim = 0`` gives plain LSTMs whose output size is ``cell_dim``).
      dropout: dropout between layers (not after the last).
      impl: ``torch``: ``nn.LSTM``'s own forward and backward; ``bptt``: a
        layer with a projection computes its training pass on CPU (gradients
        enabled) with :func:`mtlasr.nnet.lstmp.lstmp_layer` (the same
        function, a hand-written backward; faster for small models). The
        parameters are ``nn.LSTM``'s either way.
    Raises: ValueError for another ``impl``.
    """

    def __init__(self, input_dim: int, num_layers: int = 3, cell_dim: int = 1024,
                 proj_dim: int = 256, dropout: float = 0.0, impl: str = "torch"):
        super().__init__()
        if impl not in ("torch", "bptt"):
            raise ValueError(f"model.lstm_impl: '{impl}' is not torch or bptt")
        self.impl = impl
        self.output_dim = proj_dim if proj_dim > 0 else cell_dim
        self.output_dims = [self.output_dim] * num_layers
        self.subsampling = 1
        dims = [input_dim] + [self.output_dim] * num_layers
        self.layers = nn.ModuleList(
            nn.LSTM(dims[i], cell_dim, num_layers=1, batch_first=True, proj_size=proj_dim)
            for i in range(num_layers))
        self.dropout = nn.Dropout(dropout)

    def output_lengths(self, lengths: torch.Tensor, layer: int) -> torch.Tensor:
        """Valid frames after ``layer``: the input's (no subsampling)."""
        return lengths

    def forward(self, x: torch.Tensor, upto: Optional[int] = None,
                lengths: Optional[torch.Tensor] = None, state: Optional["LstmState"] = None) -> List[torch.Tensor]:
        """Args: x ``(B, T, D)``; upto: stop after this many layers (default
        all); lengths: unused (a unidirectional LSTM's valid outputs do not
        depend on right padding); state: the layers' initial states, replaced
        by their final ones (state carry-over; None: zero initial states).
        Returns each computed layer's output ``(B, T, output_dim)``."""
        outs = []
        h = x
        from .lstmp import lstmp_layer

        own = (self.impl == "bptt" and torch.is_grad_enabled() and x.device.type == "cpu" and x.shape[1] > 0
               and self.layers[0].proj_size > 0)
        for i, layer in enumerate(self.layers[:upto]):
            hc = None if state is None else state.hc.get(i)
            if own:
                h, hc = lstmp_layer(layer, h, hc)
            else:
                h, hc = layer(h) if hc is None else layer(h, hc)
            if state is not None:
                state.hc[i] = hc
            outs.append(h)
            if i + 1 < len(self.layers):
                h = self.dropout(h)
        return outs


class LstmState:
    """The recurrent state an :class:`LstmTrunk` carries from one chunk to
    the next (state carry-over, ``chunk.carry``; Kaldi nnet1's multi-stream
    training): per layer, ``(h (1, B, P), c (1, B, H))`` float32 (P the
    projection size, else H), missing before the first chunk (zero).
    A plain class (not a dataclass), so that DistributedDataParallel
    passes it to the model as it is, and the model's updates reach the
    caller."""

    def __init__(self):
        self.hc: Dict[int, Tuple[torch.Tensor, torch.Tensor]] = {}

    def reset(self, rows: torch.Tensor) -> None:
        """Zero the state of the streams ``rows`` ``(B,) bool`` (those that
        start a new utterance). Raises ValueError when B is not the state's
        batch size."""
        for i, (h, c) in self.hc.items():
            if h.shape[1] != rows.shape[0]:
                raise ValueError(f"state carry-over: a batch of {rows.shape[0]} streams, the state has {h.shape[1]}")
            keep = (~rows.to(h.device))[None, :, None].to(h.dtype)
            self.hc[i] = (h * keep, c * keep)

    def detach(self) -> None:
        """Cut the graph behind the state (truncated back-propagation
        through time at the chunk boundary)."""
        self.hc = {i: (h.detach(), c.detach()) for i, (h, c) in self.hc.items()}


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.scale * grad, None


def grad_reverse(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Gradient reversal layer (Ganin and Lempitsky, ICML 2015, sec. 3.2):
    the identity forward; multiplies the gradient by ``-scale`` backward.
    Any shape."""
    return _GradReverse.apply(x, float(scale))


def pool(h: torch.Tensor, mask: torch.Tensor, kind: str, tau: float = 1.0) -> torch.Tensor:
    """Pool frame representations over time, counting only masked-in frames.

    Args:
      h: ``(B, T, K)``; mask: ``(B, T)`` bool (rows with no True frame give 0).
      kind: ``mean``; ``max`` (per dimension); ``lse``, LogSumExp with
        temperature tau, s = (1/tau) log((1/T) sum_t exp(tau h_t)) (seed 002
        sec. 3), which tends to ``mean`` as tau -> 0 and to ``max`` as
        tau -> infinity; ``first``, the first position (the CLS token's
        output, which the model passes as a one-frame sequence; seed 003
        first+cls pooling), mask not used.
    Returns: ``(B, K)``.
    Raises: ValueError for another kind.
    """
    m = mask.unsqueeze(-1).to(h.dtype)
    n = m.sum(1).clamp(min=1.0)
    if kind == "mean":
        return (h * m).sum(1) / n
    if kind == "max":
        return h.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1).nan_to_num(0.0, neginf=0.0)
    if kind == "first":
        return h[:, 0]
    if kind == "lse":
        z = (tau * h).masked_fill(~mask.unsqueeze(-1), float("-inf"))
        return ((torch.logsumexp(z, 1) - torch.log(n)) / tau).nan_to_num(0.0, neginf=0.0)
    raise ValueError(f"unknown pooling '{kind}' (mean, max, lse or first)")


CTC_POOLINGS = ("ctc_blank", "ctc_nonblank")


def ctc_pool_mask(logits: torch.Tensor, mask: Optional[torch.Tensor], kind: str) -> torch.Tensor:
    """Seed 003 sec. 3.1.4, CTC-based mean pooling: the frames whose CTC
    output peaks at the blank (``ctc_blank``) or at a unit
    (``ctc_nonblank``). Not differentiated.

    Args: logits ``(B, T, V)`` of the main CTC head (unit 0 = blank); mask
      ``(B, T)`` bool valid frames (None: all); kind.
    Returns: ``(B, T)`` bool; a row with no such frame keeps all its valid
      frames (so that every utterance has an embedding).
    """
    with torch.no_grad():
        blank = logits.argmax(-1) == 0
        valid = torch.ones_like(blank) if mask is None else mask
        m = valid & (blank if kind == "ctc_blank" else ~blank)
        return torch.where(m.any(1, keepdim=True), m, valid)


class CosineLinear(nn.Module):
    """Cosines between each input vector and K learned class vectors (the
    output layer of an AAM-softmax head; ArcFace, Deng et al. 2019, eq. 3:
    cos theta_j = W_j^T x / (||W_j|| ||x||)), no bias.

    Shapes: ``(..., D) -> (..., K)``, values in [-1, 1].
    """

    def __init__(self, input_dim: int, output_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(output_dim, input_dim))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(nn.functional.normalize(x, dim=-1), nn.functional.normalize(self.weight, dim=-1))


class Head(nn.Module):
    """Output head: optional gradient reversal, hidden layers (Linear + ReLU),
    optional pooling over time, then a linear (or cosine) output.

    No softmax: the main task's softmax is inside the cross-entropy, and a
    regression head is linear (seed 000 sec. 5.2).

    Args:
      input_dim: size of the shared layer it reads; hidden: hidden sizes; output_dim: K.
      pooling: ``none`` (one output per frame) or ``mean``/``max``/``lse``
        (one per sequence, see :func:`pool`); tau: LogSumExp temperature.
      grl: a gradient reversal layer in front; its scale is the attribute
        ``grl_scale`` (set by the trainer at every step, e.g. by a ramp).
      cosine: the output layer is a :class:`CosineLinear` (AAM-softmax
        heads: the outputs are cosines, the loss adds margin and scale).
    Shapes: ``(B, T, input_dim) -> (B, T, K)``, or ``(B, K)`` when pooled.
    """

    def __init__(self, input_dim: int, hidden: Sequence[int], output_dim: int, pooling: str = "none",
                 tau: float = 1.0, grl: bool = False, cosine: bool = False):
        super().__init__()
        layers: List[nn.Module] = []
        d = input_dim
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU()]
            d = h
        self.hidden = nn.Sequential(*layers)
        self.out = CosineLinear(d, output_dim) if cosine else nn.Linear(d, output_dim)
        self.output_dim = output_dim
        self.embed_dim = d
        self.pooling, self.tau, self.grl, self.cosine = pooling, tau, grl, cosine
        self.grl_scale = 1.0

    def embed(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The representation the output layer reads: ``(B, T, embed_dim)``,
        or ``(B, embed_dim)`` when pooled (a speaker embedding for
        verification)."""
        if self.grl:
            x = grad_reverse(x, self.grl_scale)
        h = self.hidden(x)
        if self.pooling != "none":
            if mask is None:
                mask = torch.ones(h.shape[:2], dtype=torch.bool, device=h.device)
            h = pool(h, mask, "mean" if self.pooling in CTC_POOLINGS else self.pooling, self.tau)
        return h

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.out(self.embed(x, mask))


class AcousticModel(nn.Module):
    """Shared encoder plus output heads; ``main`` gives the main task's logits.

    Args:
      input_dim: feature dimension D.
      num_pdfs: main-task classes: HMM pdfs (frame cross-entropy) or CTC
        output units with the blank at 0.
      num_layers, cell_dim, proj_dim, dropout: see :class:`LstmTrunk` (used
        when no ``encoder`` is given).
      aux: auxiliary heads, name -> (fork layer 1..L, hidden sizes, output
        dim[, pooling, tau, grl, cosine]) (:class:`Head`). The main head
        reads the last layer.
      encoder: a shared encoder (:mod:`mtlasr.nnet.encoders`); default the
        LSTMP trunk of seed 000.
      branches: auxiliary head -> k >= 2: the head reads its own copy of
        the encoder's layers k+1..fork, initialised as the shared ones, so
        that only layers 1..k are shared with the main task (seed 003's
        branched encoder; encoders with ``make_branch``: wav2vec2); 0 = none.

    ``forward`` returns ``{"main": (B, T, num_pdfs) logits, <aux>: (B, T, K)}``;
    auxiliary heads are dropped at decoding, where only ``main`` is used
    (``mtlasr.nnet.build.load_for_inference`` builds the model without them).

    Raises: ValueError for a fork layer outside 1..L.
    """

    def __init__(self, input_dim: int, num_pdfs: int, num_layers: int = 3, cell_dim: int = 1024,
                 proj_dim: int = 256, dropout: float = 0.0,
                 aux: Optional[Dict[str, Tuple[int, Sequence[int], int]]] = None,
                 encoder: Optional[nn.Module] = None, branches: Optional[Dict[str, int]] = None,
                 split: Optional[Dict[str, int]] = None):
        super().__init__()
        self.trunk = encoder if encoder is not None else LstmTrunk(input_dim, num_layers, cell_dim, proj_dim,
                                                                    dropout)
        num_layers = len(self.trunk.layers)
        dims = self.trunk.output_dims
        # the explicit split of the last layer (seed 003 sec. 3.1.3, eq. 1): head -> d_k,
        # the head reads dimensions [0, d_k) and the main head the rest
        self.split = {n: k for n, k in (split or {}).items() if k}
        if len(self.split) > 1:
            raise ValueError(f"heads {', '.join(self.split)}: only one head can split the last layer")
        d_k = next(iter(self.split.values()), 0)
        if not 0 <= d_k < dims[-1]:
            raise ValueError(f"split {d_k}: must leave the main head some of the last layer's {dims[-1]} dimensions")
        self.heads = nn.ModuleDict({"main": nn.Linear(dims[-1] - d_k, num_pdfs)})
        self.forks: Dict[str, int] = {"main": num_layers}
        # True: auxiliary heads read detached representations (their losses
        # train the heads only, not the shared layers; staged training)
        self.detach_aux = False
        # criterion ctc: the main loss per utterance or per output unit (model.ctc_norm;
        # mtlasr.nnet.ctc.ctc_task_losses); build_model sets it from the config
        self.ctc_norm = "utterance"
        # branched heads (seed 003 sec. 3.1.2): name -> the last shared layer; the
        # head reads its own copy of the layers after it (self.branches[name])
        self.branch_at: Dict[str, int] = {}
        self.branches = nn.ModuleDict()
        for name, at in (branches or {}).items():
            if not at:
                continue
            if not hasattr(self.trunk, "make_branch"):
                raise ValueError(f"head {name}: this encoder cannot be branched (only wav2vec2)")
            fork = (aux or {})[name][0]
            if fork <= at:
                raise ValueError(f"head {name}: fork layer {fork} is not after its branch point {at}")
            self.branches[name] = self.trunk.make_branch(at)
            self.branch_at[name] = at
        for name, (fork, hidden, dim, *rest) in (aux or {}).items():
            if not 1 <= fork <= num_layers:
                raise ValueError(f"head {name}: fork layer {fork} is not in 1..{num_layers}")
            if name in self.split and (fork != num_layers or name in self.branch_at):
                raise ValueError(f"head {name}: a split head reads the last shared layer (fork last, no branch), "
                                 f"got fork {fork}")
            self.heads[name] = Head(self.split.get(name, dims[fork - 1]), hidden, dim, *rest)
            self.forks[name] = fork
            if self.heads[name].pooling in CTC_POOLINGS and (fork != num_layers or name in self.branch_at):
                raise ValueError(f"head {name}: CTC-based pooling reads the main head's output sequence: fork "
                                 f"last and no branch, got fork {fork}")
            if self.heads[name].pooling == "first" and not (getattr(self.trunk, "cls_token", False) and fork >= 2):
                raise ValueError(f"head {name}: first+cls pooling needs an encoder with a CLS token and a fork "
                                 f"after its first layer (the CLS token enters the transformer), got layer {fork}")

    def output_lengths(self, lengths: torch.Tensor, layer: Optional[int] = None) -> torch.Tensor:
        """Valid output frames ``(B,)`` of shared layer ``layer`` (default the
        last, which the main head reads) for input lengths ``(B,)``."""
        return self.trunk.output_lengths(lengths, layer or len(self.trunk.layers))

    def forward(self, x: torch.Tensor, heads: Optional[List[str]] = None, out_slice: Optional[slice] = None,
                mask: Optional[torch.Tensor] = None,
                lengths: Optional[torch.Tensor] = None, embed: bool = False,
                state: Optional[LstmState] = None) -> Dict[str, torch.Tensor]:
        """Args: x ``(B, T, D)``; heads: names to compute (default all);
        out_slice: keep only these time positions ``T'`` (the labelled ones);
        mask: ``(B, T')`` frames that pooled heads pool over; lengths:
        ``(B,)`` valid input frames of padded utterances (then each pooled
        head pools over the valid frames of its own fork layer, and ``mask``
        is not used); embed: auxiliary heads return :meth:`Head.embed`
        (what their output layer reads: ``(B, E)`` pooled embeddings, e.g.
        speaker embeddings) instead of their outputs; state: the
        recurrent state carried over from the previous chunk, updated in
        place (:class:`LstmState`; LSTMP encoder only).
        Returns: name -> ``(B, T', K)`` (``(B, K)`` for pooled heads)."""
        from .encoders import length_mask

        names = list(self.heads) if heads is None else list(heads)
        ctc_pooled = [n for n in names if getattr(self.heads[n], "pooling", None) in CTC_POOLINGS]
        if ctc_pooled:  # they pool by the main head's outputs: main first
            names = ["main"] + [n for n in names if n != "main"]
        first = [n for n in names if getattr(self.heads[n], "pooling", None) == "first"]
        branched = [n for n in names if n in self.branch_at]
        upto = max(self.branch_at.get(n, self.forks[n]) for n in names)
        kw: Dict[str, object] = {}
        if first:  # first+cls pooling: the CLS outputs too
            kw["return_prefix"] = True
        if branched:  # the states where the branches leave the shared layers
            kw["keep_states"] = sorted({self.branch_at[n] for n in branched})
        if state is not None:
            if not isinstance(self.trunk, LstmTrunk):
                raise ValueError("state carry-over (chunk.carry) needs the lstmp encoder")
            upto = len(self.trunk.layers)  # every layer, so that the state of each moves on
            res = self.trunk(x, upto=upto, lengths=lengths, state=state)
            kw = {}
        else:
            res = self.trunk(x, upto=upto, lengths=lengths, **kw)
        layer_outs = res[0] if kw else res
        prefix = res[1] if first else None
        states = res[-1] if branched else None
        out = {}
        for name in names:
            fork = self.forks[name]
            if name in self.branch_at:
                at = self.branch_at[name]
                b_outs, b_prefix = self.trunk.run_branch(states[at], self.branches[name], at, fork)
                rep, cls = b_outs[-1], b_prefix[-1]
            else:
                rep, cls = layer_outs[fork - 1], prefix[fork - 1] if first else None
            if name in first:
                rep = cls[:, None, :]  # (B, 1, H)
            elif out_slice is not None:
                rep = rep[:, out_slice]
            if self.split:
                d_k = next(iter(self.split.values()))
                rep = rep[..., :d_k] if name in self.split else rep[..., d_k:] if name == "main" else rep
            if self.detach_aux and name != "main":
                rep = rep.detach()
            head = self.heads[name]
            if isinstance(head, Head):
                m = mask
                if lengths is not None and name not in first:
                    m = length_mask(self.output_lengths(lengths, self.forks[name]), rep.shape[1])
                if name in ctc_pooled:
                    m = ctc_pool_mask(out["main"], m, head.pooling)
                out[name] = head.embed(rep, m) if embed else head(rep, m)
            else:
                out[name] = head(rep)
        if heads is not None and "main" not in heads:
            out.pop("main", None)
        return out
