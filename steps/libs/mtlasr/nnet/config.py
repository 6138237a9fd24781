"""YAML configuration for neural training, with command-line overrides.

A config is a nested mapping (sections ``model``, ``chunk``, ``train``,
``features``, ``tasks``). Overrides use dotted keys, ``train.max_epochs=2``; values are
parsed as YAML scalars. Unknown keys are errors, so a typo cannot silently
fall back to a default. ``tasks`` maps auxiliary task names to their
declarations (see :mod:`mtlasr.nnet.tasks`): any name may be added, each
field is checked, and a task set to ``null`` is removed (``--set
tasks.ivector=null``). Several files may be given; later ones update
earlier ones (a model config plus task configs).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

import yaml

from ..datadir import PathLike, atomic_open
from .tasks import TASK_DEFAULTS, task_spec

DEFAULTS: Dict[str, Dict[str, Any]] = {
    "model": {
        "encoder": "lstmp",        # lstmp | conv_blstm | glu_conv (mtlasr.nnet.encoders)
        "criterion": "ce",         # ce: frame cross-entropy on alignments (chunks) | ctc: CTC on unit sequences
        # criterion ctc: the main loss of a batch is the mean over its transcribed utterances of
        # utterance: -ln p(y|x), nats per utterance (ESPnet; seed 004's beta weights assume it) |
        # token: -ln p(y|x) / |y|, nats per output unit (torch's ctc_loss "mean"; fairseq and
        # transformers' wav2vec2; seed 003's loss magnitudes, eqs. 5-7, assume it)
        "ctc_norm": "utterance",
        "num_layers": 3,           # recurrent or gated-conv layers (conv_blstm: BiLSTMs after the conv front end)
        "cell_dim": 1024,          # LSTM cells (per direction for conv_blstm); glu_conv: channels
        "proj_dim": 256,           # lstmp: recurrent projection (0 = none)
        # lstmp with a projection, the training pass on CPU: torch: nn.LSTM's | bptt: the same
        # function through mtlasr.nnet.lstmp's hand-written backward, faster for small models
        # (the sample config: 1.17-1.38x), no gain for large ones (seed 000's 3 x 1024: 0.97x).
        # Decoding and GPUs always use nn.LSTM.
        "lstm_impl": "torch",
        "dropout": 0.0,
        "conv_channels": [32, 32],  # conv_blstm: 3x3 conv layers of the front end
        "conv_dim": 256,           # conv_blstm: front-end output size
        "kernel": 5,               # glu_conv: kernel width (odd)
        "subsampling": 1,          # conv_blstm, glu_conv: input frames per output frame (power of 2)
        # wav2vec2 (seed 003; mtlasr.nnet.wav2vec2): input = framed waveform (samples_per_frame per frame)
        "w2v2_dir": "",            # a local checkpoint directory (config.json + weights); "" = random weights
        "w2v2_config": {},         # Wav2Vec2Config fields: the network (random weights) or dropout-like overrides
        "samples_per_frame": 160,  # waveform samples per input frame (10 ms at 16 kHz)
        "cls_token": False,        # a CLS token in front of the transformer (first+cls pooling)
        "freeze_feature_encoder": True,  # keep the CNN fixed (seed 003); false for random weights
    },
    # criterion ce only: chunk labels per chunk, left frames of left context, the output
    # delayed by delay frames (seed 000 sec. 5.2); carry: state carry-over, the LSTM state
    # passed from chunk to chunk of an utterance (Kaldi nnet1 multi-stream training; left unused)
    "chunk": {"chunk": 20, "left": 40, "delay": 5, "carry": False},
    # criterion ctc: whole utterances, batched by length
    "sequence": {
        "max_frames": 0,           # also cap a minibatch's padded frames (0 = no cap)
        "max_utt_frames": 3000,    # longer training utterances are skipped (counted)
        "curriculum_source": "{data}/utt2lang",  # train.curriculum selects on its labels
        # Training only: each untranscribed (speaker-only, --extra-data) utterance is cut to a
        # window of this many frames at a random place, drawn anew every epoch (seed 003
        # sec. 3.4: speaker segments of 3 s or 9 s); shorter ones stay whole. 0 = whole.
        # Transcribed utterances are never cut (CTC needs the whole transcript).
        "crop_untranscribed": 0,
    },
    # cmvn: speaker (the data dir's cmvn.scp) | none (e.g. wav2vec2's framed waveforms,
    # which the encoder normalises per utterance)
    "features": {"norm_vars": True, "delta_order": 0, "cmvn": "speaker"},
    "train": {
        "minibatch": 100,          # chunks per minibatch
        "max_epochs": 10,
        "lr_initial": 0.0012,
        "lr_final": 0.00012,       # reached at the last epoch (exponential decay per epoch)
        "optimizer": "adam",       # adam | sgd
        "momentum": 0.9,           # sgd only
        "weight_decay": 0.0,
        "grad_clip": 5.0,          # max gradient norm (0 = off)
        "seed": 0,
        "num_threads": 2,          # torch CPU threads
        "early_stop_patience": 0,  # stop after this many epochs without a better valid loss (0 = never)
        "log_interval": 10,        # minibatches between progress lines
        # Staged training (seed 002 sec. 4): [[main, E1], [aux, E2], [joint, E3]] trains
        # the main task with the auxiliary heads on detached inputs, then the auxiliary
        # heads alone, then everything; the epochs must add up to max_epochs. [] = joint.
        "stages": [],
        # Curriculum (seed 004 sec. 3.2): [[labels, epochs], ...]: in the first epochs only the
        # training utterances whose sequence.curriculum_source label is in labels ("es,en";
        # "all" = every one); the epochs must add up to max_epochs. [] = all data throughout.
        "curriculum": [],
        # criterion ctc: mixed: minibatches of transcribed and speaker-only (--extra-data)
        # utterances alike; disjoint (seed 003 sec. 3.2.1): every update sums the CTC loss of a
        # batch of transcribed utterances and the auxiliary losses of a batch of speaker-only ones.
        "batching": "mixed",
        # A checkpoint (final.pt of another run) whose encoder and main head start this one
        # (seed 004: multi-task training after the CTC pre-training). "" = random.
        "init": "",
        # lambda_s, the main task's static loss weight (seed 003 eq. 4: lambda_s = lambda and
        # the auxiliary task's weight 1 - lambda); 0 trains the auxiliary tasks alone (a
        # single-task speaker baseline). Not with dynamic weighting, which sets it itself.
        "main_weight": 1.0,
        # The first this many updates change the task heads only: the encoder (every
        # parameter outside the heads, branches and CLS token included) is frozen (seed 003
        # sec. 4.2, after [14]: 10k of 100k steps). 0 = train everything from the start.
        "freeze_encoder_updates": 0,
        # How the training and validation features are held (mtlasr.nnet.stream): memory: all
        # read at the start (memory grows with the corpus) | stream: read from the arks through
        # feats.scp when needed (memory stays flat). Criterion ce: chunks are shuffled within
        # buffers of buffer_frames frames (10 ms) of randomly drawn utterances; a training set
        # that fits in one buffer gets the minibatches of memory. Criterion ctc: the minibatches
        # of memory, whatever the size.
        "data": "memory",
        "buffer_frames": 500000,
    },
    "tasks": {},                   # auxiliary tasks: name -> declaration (mtlasr.nnet.tasks)
}


# mappings whose keys are not fixed here (model.w2v2_config: Wav2Vec2Config
# fields, checked by mtlasr.nnet.wav2vec2.load_wav2vec2)
FREE_FORM = ("w2v2_config",)


def _merge_tasks(base: Dict[str, Any], new: Any, where: str) -> None:
    if new is None:
        base.clear()
        return
    if not isinstance(new, dict):
        raise TypeError(f"{where}: 'tasks' must be a mapping of task names to declarations")
    for name, spec in new.items():
        if spec is None:
            base.pop(name, None)
            continue
        if not isinstance(spec, dict):
            raise TypeError(f"{where}: tasks.{name} must be a mapping")
        for k in spec:
            if k not in TASK_DEFAULTS:
                raise KeyError(f"{where}: tasks.{name}: unknown field '{k}' "
                               f"(known: {', '.join(sorted(TASK_DEFAULTS))})")
        base.setdefault(name, {}).update(copy.deepcopy(spec))


def _merge(base: Dict[str, Any], new: Dict[str, Any], where: str, top: bool = False) -> None:
    if not isinstance(new, dict):
        raise TypeError(f"{where}: expected a mapping")
    for k, v in new.items():
        if top and k == "tasks":
            _merge_tasks(base["tasks"], v, where)
            continue
        if k not in base:
            raise KeyError(f"{where}: unknown key '{k}' (known: {', '.join(sorted(base))})")
        if isinstance(base[k], dict):
            if not isinstance(v, dict):
                raise TypeError(f"{where}: '{k}' must be a mapping")
            if k in FREE_FORM:  # fields checked where they are used
                base[k].update(copy.deepcopy(v))
            else:
                _merge(base[k], v, f"{where}.{k}")
        else:
            base[k] = v


def load_config(path: Union[PathLike, Sequence[PathLike], None] = None,
                overrides: Iterable[str] = ()) -> Dict[str, Any]:
    """Defaults, updated by the YAML file(s) at ``path`` in order, then by
    ``key.sub=value`` overrides; task declarations completed and checked.

    Raises:
      KeyError: an unknown key (naming it and the file).
      ValueError: a malformed override or an invalid task declaration.
    """
    cfg = copy.deepcopy(DEFAULTS)
    paths = [] if path is None else [path] if isinstance(path, (str, Path)) else list(path)
    for p in paths:
        try:
            data = yaml.safe_load(Path(p).read_text()) or {}
        except yaml.YAMLError as e:
            raise ValueError(f"{p}: not valid YAML: {e}") from None
        _merge(cfg, data, str(p), top=True)
    overrides = list(overrides)
    for ov in overrides:
        if "=" not in ov:
            raise ValueError(f"override '{ov}' is not key.sub=value")
    _check_task_overrides(cfg, overrides, paths)
    for ov in overrides:
        key, value = ov.split("=", 1)
        node: Any = {}
        parts = key.split(".")
        cur = node
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        try:
            cur[parts[-1]] = yaml.safe_load(value)
        except yaml.YAMLError:  # e.g. a path template such as {data}/utt2spk
            cur[parts[-1]] = value
        _merge(cfg, node, f"override {ov}", top=True)
    cfg["tasks"] = {name: task_spec(name, spec) for name, spec in cfg["tasks"].items()}
    check_stages(cfg["train"])
    check_model(cfg)
    return cfg


CRITERIA = ("ce", "ctc")
CTC_NORMS = ("utterance", "token")


def check_model(cfg: Dict[str, Any]) -> None:
    """Check the ``model`` section and what the criterion allows.

    Raises: ValueError naming the key.
    """
    from .encoders import ENCODERS, _time_strides

    m = cfg["model"]
    if m["encoder"] not in ENCODERS:
        raise ValueError(f"model.encoder: '{m['encoder']}' is not one of {', '.join(ENCODERS)}")
    if m["criterion"] not in CRITERIA:
        raise ValueError(f"model.criterion: '{m['criterion']}' is not one of {', '.join(CRITERIA)}")
    if m["ctc_norm"] not in CTC_NORMS:
        raise ValueError(f"model.ctc_norm: '{m['ctc_norm']}' is not one of {', '.join(CTC_NORMS)}")
    for k in ("num_layers", "cell_dim", "conv_dim", "kernel", "subsampling"):
        if not isinstance(m[k], int) or isinstance(m[k], bool) or m[k] < 1:
            raise ValueError(f"model.{k}: must be a positive integer, got {m[k]!r}")
    if m["encoder"] == "conv_blstm":
        _time_strides(m["subsampling"], len(m["conv_channels"]))
    if m["encoder"] == "glu_conv" and m["kernel"] % 2 != 1:
        raise ValueError(f"model.kernel: gated convolutions need an odd width, got {m['kernel']}")
    if m["encoder"] == "lstmp" and m["subsampling"] != 1:
        raise ValueError("model.subsampling: the lstmp encoder does not subsample (use 1)")
    if m["criterion"] == "ce" and m["subsampling"] != 1:
        raise ValueError("model.subsampling: frame cross-entropy needs one output per frame (use 1)")
    if cfg["features"]["cmvn"] not in ("speaker", "none"):
        raise ValueError(f"features.cmvn: '{cfg['features']['cmvn']}' is not speaker or none")
    if m["encoder"] == "wav2vec2":
        if cfg["features"]["cmvn"] != "none" or cfg["features"]["delta_order"] != 0:
            raise ValueError("model.encoder wav2vec2 reads the waveform itself: set features.cmvn none and "
                             "features.delta_order 0")
        if m["criterion"] != "ctc":
            raise ValueError("model.encoder: wav2vec2 is trained on whole utterances: use model.criterion ctc")
        if not isinstance(m["samples_per_frame"], int) or isinstance(m["samples_per_frame"], bool) \
                or m["samples_per_frame"] < 1:
            raise ValueError(f"model.samples_per_frame: must be a positive integer, got {m['samples_per_frame']!r}")
        for k in ("cls_token", "freeze_feature_encoder"):
            if not isinstance(m[k], bool):
                raise ValueError(f"model.{k}: must be true or false, got {m[k]!r}")
    for name, t in cfg["tasks"].items():
        if t["pooling"] in ("ctc_blank", "ctc_nonblank") and m["criterion"] != "ctc":
            raise ValueError(f"tasks.{name}.pooling: {t['pooling']} pools by the CTC outputs: model.criterion ctc")
        if t["pooling"] == "first" and not (m["encoder"] == "wav2vec2" and m["cls_token"]):
            raise ValueError(f"tasks.{name}.pooling: first (first+cls pooling) needs the wav2vec2 encoder with "
                             f"model.cls_token true")
    if m["criterion"] == "ce" and m["encoder"] != "lstmp":
        raise ValueError(f"model.encoder: {m['encoder']} is bidirectional or non-causal and is trained on "
                         f"whole utterances: use it with model.criterion ctc (the chunked frame "
                         f"cross-entropy trainer needs lstmp)")
    if m["lstm_impl"] not in ("torch", "bptt"):
        raise ValueError(f"model.lstm_impl: '{m['lstm_impl']}' is not torch or bptt")
    ch = cfg["chunk"]
    for k in ("chunk", "left", "delay"):
        if isinstance(ch[k], bool) or not isinstance(ch[k], int) or ch[k] < (1 if k == "chunk" else 0):
            raise ValueError(f"chunk.{k}: must be an integer >= {1 if k == 'chunk' else 0}, got {ch[k]!r}")
    if not isinstance(ch["carry"], bool):
        raise ValueError(f"chunk.carry: must be true or false, got {ch['carry']!r}")
    if ch["carry"] and ch["delay"] >= ch["chunk"]:
        raise ValueError(f"chunk.carry: the label delay ({ch['delay']}) must be shorter than the chunk "
                         f"({ch['chunk']}), or an utterance's first chunk has no label")
    if m["criterion"] == "ctc":
        for name, t in cfg["tasks"].items():
            if t["targets"] in ("frame_label", "frame_vector"):
                raise ValueError(f"tasks.{name}: {t['targets']} targets need a frame alignment, which "
                                 f"CTC training does not have (use utterance or speaker targets)")
    mw = cfg["train"]["main_weight"]
    if isinstance(mw, bool) or not isinstance(mw, (int, float)) or not 0 <= mw < float("inf"):
        raise ValueError(f"train.main_weight: must be a number >= 0, got {mw!r}")
    if mw != 1.0 and any(t["schedule"] == "dynamic" for t in cfg["tasks"].values()):
        raise ValueError("train.main_weight: dynamic weighting (seed 003 eqs. 6-7) sets the main task's weight "
                         "itself; leave train.main_weight at 1")
    for key, val in (("sequence.crop_untranscribed", cfg["sequence"]["crop_untranscribed"]),
                     ("train.freeze_encoder_updates", cfg["train"]["freeze_encoder_updates"])):
        if isinstance(val, bool) or not isinstance(val, int) or val < 0:
            raise ValueError(f"{key}: must be an integer >= 0, got {val!r}")
    if cfg["train"]["data"] not in ("memory", "stream"):
        raise ValueError(f"train.data: '{cfg['train']['data']}' is not memory or stream")
    bf = cfg["train"]["buffer_frames"]
    if isinstance(bf, bool) or not isinstance(bf, int) or bf < 1:
        raise ValueError(f"train.buffer_frames: must be a positive integer, got {bf!r}")
    if cfg["train"]["batching"] not in ("mixed", "disjoint"):
        raise ValueError(f"train.batching: '{cfg['train']['batching']}' is not mixed or disjoint")
    if cfg["train"]["batching"] == "disjoint" and (m["criterion"] != "ctc" or not cfg["tasks"]):
        raise ValueError("train.batching: disjoint batches need model.criterion ctc and an auxiliary task")
    cur = cfg["train"]["curriculum"] or []
    if cur:
        if m["criterion"] != "ctc":
            raise ValueError("train.curriculum: only with model.criterion ctc")
        total = 0
        for st in cur:
            if (not isinstance(st, (list, tuple)) or len(st) != 2 or not isinstance(st[0], str)
                    or not isinstance(st[1], int) or st[1] < 1):
                raise ValueError(f"train.curriculum: {st!r} is not [\"label,label,...\" or \"all\", positive epochs]")
            total += st[1]
        if total != cfg["train"]["max_epochs"]:
            raise ValueError(f"train.curriculum: the stages have {total} epochs, train.max_epochs is "
                             f"{cfg['train']['max_epochs']}")


def curriculum_labels(cfg_train: Dict[str, Any], epoch: int) -> Optional[List[str]]:
    """The labels whose utterances 0-based ``epoch`` trains on (None: all)."""
    left = epoch
    for labels, n in cfg_train["curriculum"] or []:
        if left < n:
            return None if labels == "all" else [x.strip() for x in labels.split(",") if x.strip()]
        left -= n
    return None


def _check_task_overrides(cfg: Dict[str, Any], overrides: Sequence[str], paths: Sequence[PathLike]) -> None:
    """An override of one field of a task (``tasks.<name>.<field>=...``) needs
    the task declared in a config file, or its ``targets`` given by another
    override (a task declared on the command line alone).

    Raises: KeyError naming the override, the files and the declared tasks.
    """
    keys = [ov.split("=", 1)[0].split(".") for ov in overrides]
    new_tasks = {k[1] for k in keys if len(k) == 3 and k[0] == "tasks" and k[2] == "targets"}
    for ov, k in zip(overrides, keys):
        if len(k) >= 3 and k[0] == "tasks" and k[1] not in cfg["tasks"] and k[1] not in new_tasks:
            declared = ", ".join(cfg["tasks"]) or "none"
            files = ", ".join(str(p) for p in paths) or "no config file"
            raise KeyError(f"override {ov}: no task '{k[1]}' is declared in {files} (declared: {declared})")


STAGE_KINDS = ("main", "aux", "joint")


def check_stages(cfg_train: Dict[str, Any]) -> None:
    """Check ``train.stages``: pairs ``[main|aux|joint, epochs]`` adding up to ``max_epochs``.

    Raises: ValueError naming the problem.
    """
    stages = cfg_train["stages"] or []
    if not isinstance(stages, list):
        raise ValueError(f"train.stages: expected a list of [kind, epochs], got {stages!r}")
    total = 0
    for st in stages:
        if (not isinstance(st, (list, tuple)) or len(st) != 2 or st[0] not in STAGE_KINDS
                or not isinstance(st[1], int) or st[1] < 1):
            raise ValueError(f"train.stages: {st!r} is not [main|aux|joint, positive epochs]")
        total += st[1]
    if stages and total != cfg_train["max_epochs"]:
        raise ValueError(f"train.stages: the stages have {total} epochs, train.max_epochs is "
                         f"{cfg_train['max_epochs']}")


def stage_of(cfg_train: Dict[str, Any], epoch: int) -> str:
    """The kind of training (``main``, ``aux`` or ``joint``) of 0-based ``epoch``."""
    left = epoch
    for kind, n in cfg_train["stages"] or []:
        if left < n:
            return kind
        left -= n
    return "joint"


def save_config(cfg: Dict[str, Any], path: PathLike) -> None:
    """Write the resolved config (what was actually used) as YAML, atomically."""
    with atomic_open(path) as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
