"""Acoustic features: audio input, Kaldi MFCC, CMVN statistics and deltas,
and the one reader of a data dir's features for every model.

MFCCs come from kaldi-native-fbank (Kaldi-exact), from audio read and
checked by :mod:`mtlasr.audio`.

Reading features: :func:`iter_features` yields one utterance at a time
(CMVN per speaker, per utterance or none; deltas; checks), and
:func:`load_features` (the acoustic models: speaker CMVN, all in memory)
and :class:`FeatureReader` (one job of the UBM and i-vector programs, with
its throughput) are built on it; :class:`FeatureTable` does the same to
one utterance at a time, in any order (the streaming training data). A
model dir records the options its features were made with (``cmvn_opts``,
``delta_order``: :func:`write_feature_opts`, :class:`FeatureOpts`), and
every later program reads them back. Frames are 10 ms apart (the MFCC
frame shift).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Tuple

import numpy as np

from .datadir import PathLike, atomic_open

logger = logging.getLogger(__name__)


_MFCC_KEYS = {
    # Kaldi option -> (object path in knf.MfccOptions, type)
    "sample-frequency": ("frame_opts.samp_freq", float),
    "frame-length": ("frame_opts.frame_length_ms", float),
    "frame-shift": ("frame_opts.frame_shift_ms", float),
    "dither": ("frame_opts.dither", float),
    "preemphasis-coefficient": ("frame_opts.preemph_coeff", float),
    "remove-dc-offset": ("frame_opts.remove_dc_offset", "bool"),
    "window-type": ("frame_opts.window_type", str),
    "round-to-power-of-two": ("frame_opts.round_to_power_of_two", "bool"),
    "snip-edges": ("frame_opts.snip_edges", "bool"),
    "blackman-coeff": ("frame_opts.blackman_coeff", float),
    "num-mel-bins": ("mel_opts.num_bins", int),
    "low-freq": ("mel_opts.low_freq", float),
    "high-freq": ("mel_opts.high_freq", float),
    "num-ceps": ("num_ceps", int),
    "use-energy": ("use_energy", "bool"),
    "energy-floor": ("energy_floor", float),
    "raw-energy": ("raw_energy", "bool"),
    "cepstral-lifter": ("cepstral_lifter", float),
    "htk-compat": ("htk_compat", "bool"),
}


def read_kaldi_conf(path: PathLike) -> Dict[str, str]:
    """Parse a Kaldi ``--name=value`` config file (``#`` comments allowed).

    Raises:
      ValueError: a line that is not ``--name=value``, naming file and line.
    """
    out: Dict[str, str] = {}
    for lineno, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if not line.startswith("--") or "=" not in line:
            raise ValueError(f"{path}:{lineno}: expected --name=value, got {line!r}")
        name, value = line[2:].split("=", 1)
        out[name] = value
    return out


def mfcc_options(conf: Optional[PathLike] = None, **overrides: str):
    """Build ``kaldi_native_fbank.MfccOptions`` from a Kaldi mfcc.conf.

    Dither and use-energy are always set explicitly: kaldi-native-fbank's
    dither default differs from Kaldi's, so unless the config says otherwise
    they are set to Kaldi's defaults (dither 1.0, use-energy true).

    Raises:
      ValueError: an option this reader does not know, naming it.
    """
    import kaldi_native_fbank as knf

    opts = knf.MfccOptions()
    settings = {"dither": "1.0", "use-energy": "true"}
    if conf is not None:
        settings.update(read_kaldi_conf(conf))
    settings.update(overrides)
    for name, value in settings.items():
        if name not in _MFCC_KEYS:
            raise ValueError(f"{conf}: unsupported MFCC option --{name}")
        attr, typ = _MFCC_KEYS[name]
        if typ == "bool":
            if value not in ("true", "false"):
                raise ValueError(f"{conf}: --{name} must be true or false, got {value}")
            val = value == "true"
        else:
            val = typ(value)
        obj = opts
        *parents, leaf = attr.split(".")
        for p in parents:
            obj = getattr(obj, p)
        setattr(obj, leaf, val)
    return opts


def compute_mfcc(samples: np.ndarray, sample_rate: int, opts) -> np.ndarray:
    """Kaldi MFCC of one utterance.

    Args:
      samples: ``(N,) float32`` on the int16 scale.
      sample_rate: Hz; must equal the options' sample frequency.
      opts: ``kaldi_native_fbank.MfccOptions``.

    Returns:
      ``(T, num_ceps) float32``, one row per 10 ms frame (with the default
      frame shift); T = 0 when the signal is shorter than one frame.

    Raises:
      ValueError: a sample-rate mismatch.
    """
    import kaldi_native_fbank as knf

    if abs(sample_rate - opts.frame_opts.samp_freq) > 0.5:
        raise ValueError(f"sample rate {sample_rate} Hz differs from --sample-frequency={opts.frame_opts.samp_freq}")
    mfcc = knf.OnlineMfcc(opts)
    mfcc.accept_waveform(float(sample_rate), samples.tolist())
    mfcc.input_finished()
    n = mfcc.num_frames_ready
    if n == 0:
        return np.zeros((0, opts.num_ceps), dtype=np.float32)
    return np.stack([np.asarray(mfcc.get_frame(i), dtype=np.float32) for i in range(n)])


def cmvn_stats(feats: np.ndarray) -> np.ndarray:
    """Kaldi CMVN statistics of a block of frames.

    Args:
      feats: ``(T, D)`` features.

    Returns:
      ``(2, D + 1) float64``: row 0 holds the per-dimension sums and, in the
      last column, the frame count; row 1 the sums of squares (last column 0).
      This is the layout of Kaldi's compute-cmvn-stats, so stats add up.
    """
    feats = np.asarray(feats, dtype=np.float64)
    stats = np.zeros((2, feats.shape[1] + 1), dtype=np.float64)
    stats[0, :-1] = feats.sum(0)
    stats[0, -1] = feats.shape[0]
    stats[1, :-1] = (feats**2).sum(0)
    return stats


def apply_cmvn(feats: np.ndarray, stats: np.ndarray, norm_vars: bool = False) -> np.ndarray:
    """Apply cepstral mean (and variance) normalisation, as Kaldi's apply-cmvn.

    Args:
      feats: ``(T, D)``.
      stats: ``(2, D + 1)`` from :func:`cmvn_stats` (summed over a speaker).
      norm_vars: also scale to unit variance (variance floored at 1e-10).

    Returns:
      ``(T, D) float32``.

    Raises:
      ValueError: dimension mismatch or a zero frame count.
    """
    d = feats.shape[1]
    if stats.shape != (2, d + 1):
        raise ValueError(f"CMVN stats of shape {stats.shape} do not fit features of dim {d}")
    count = stats[0, -1]
    if count <= 0:
        raise ValueError("CMVN stats have a zero frame count")
    mean = stats[0, :-1] / count
    out = feats.astype(np.float64) - mean
    if norm_vars:
        var = np.maximum(stats[1, :-1] / count - mean**2, 1e-10)
        out /= np.sqrt(var)
    return out.astype(np.float32)


def _delta_scales(order: int, window: int) -> list:
    """Filter taps for each delta order: order 0 is [1]; order i convolves
    order i-1 with the window ``n / (2 sum n^2)``, n = -N..N."""
    denom = 2.0 * sum(n * n for n in range(1, window + 1))
    base = np.arange(-window, window + 1, dtype=np.float64) / denom
    scales = [np.ones(1)]
    for _ in range(order):
        scales.append(np.convolve(scales[-1], base))
    return scales


def add_deltas(feats: np.ndarray, order: int = 2, window: int = 2) -> np.ndarray:
    """Append delta features, as Kaldi's add-deltas.

    delta_t = sum_{n=1..N} n (c_{t+n} - c_{t-n}) / (2 sum_{n=1..N} n^2)
    (Young et al., HTK Book, eq. 5.16); order i applies the filter i times to
    the static features, frames beyond the edges being the first/last frame.

    Args:
      feats: ``(T, D)``.
      order: number of delta orders (2 gives static + delta + delta-delta).
      window: N above.

    Returns:
      ``(T, D * (order + 1)) float32``.
    """
    feats = np.asarray(feats, dtype=np.float32)
    t = feats.shape[0]
    if t == 0:
        return np.zeros((0, feats.shape[1] * (order + 1)), dtype=np.float32)
    scales = _delta_scales(order, window)
    max_off = order * window
    idx = np.clip(np.arange(-max_off, t + max_off), 0, t - 1)
    padded = feats.astype(np.float64)[idx]
    out = []
    for sc in scales:
        off = (len(sc) - 1) // 2
        acc = np.zeros(feats.shape, dtype=np.float64)
        for j, w in enumerate(sc):
            if w != 0.0:
                start = max_off - off + j
                acc += w * padded[start : start + t]
        out.append(acc)
    return np.concatenate(out, axis=1).astype(np.float32)


# ------------------------------------------------------------ feature input
def iter_features(data_dir: PathLike, norm_vars: bool, delta_order: int, *, cmvn_mode: str,
                  dim: Optional[int] = None, utts: Optional[Iterable[str]] = None,
                  skipped: Optional[List[Tuple[str, str]]] = None, keep_empty: bool = False,
                  dtype=np.float64) -> Iterator[Tuple[str, np.ndarray]]:
    """Features of a data dir, one utterance at a time, checked: the one
    reader of the GMM, UBM, i-vector and network programs.

    CMVN per ``cmvn_mode``: ``speaker`` (the data dir's cmvn.scp, Kaldi's
    apply-cmvn with utt2spk, as the acoustic models use), ``utterance`` (the
    utterance's own statistics, close to Kaldi sid's sliding CMN on short
    utterances) or ``none``; then deltas (:func:`add_deltas`). The
    arithmetic is float32 (:func:`apply_cmvn`, :func:`add_deltas`); the
    result is cast to ``dtype``.

    Args:
      data_dir: holds feats.scp, cmvn.scp and utt2spk.
      norm_vars: variance normalisation too (Kaldi's apply-cmvn --norm-vars).
      delta_order: 0 for static features, 2 for +delta+delta-delta.
      cmvn_mode: one of :data:`CMVN_MODES` (no default: the step that trains
        a model chooses it and records it, :func:`write_feature_opts`).
      dim: the model's feature dimension, checked if given.
      utts: these utterances, in this order (default: all of feats.scp).
      skipped: if given, ``(utt, reason)`` is appended for every utterance
        skipped (an utterance with no frames; a warning naming it is logged).
      keep_empty: yield utterances with no frames (``(0, D)``) instead of
        skipping them.
      dtype: of the yielded matrices.

    Yields:
      ``(utt, x)`` with ``x`` of shape ``(T, D * (delta_order + 1))``, T > 0
      unless ``keep_empty``, in feats.scp order (or ``utts`` order).

    Raises:
      FileNotFoundError: feats.scp, cmvn.scp or utt2spk missing.
      KeyError: an utterance of ``utts`` without features, an utterance
        without speaker or a speaker without CMVN stats, naming it.
      ValueError: an unknown ``cmvn_mode``; non-finite (NaN/Inf) features,
        naming the utterance and its feats.scp entry (checked before CMVN,
        so that a bad utterance is not blamed on its speaker's other
        utterances; non-finite CMVN stats name the utterance that caused
        them, or else the speaker); a feature dimension other than ``dim``,
        or features or stats that cannot be read (a truncated ark), naming
        the utterance or speaker and its scp entry.
    """
    table = FeatureTable(data_dir, norm_vars, delta_order, cmvn_mode, dim)
    for utt in (table.feats_scp if utts is None else utts):
        raw = table.raw(utt)
        if (raw.ndim != 2 or raw.shape[0] == 0) and not keep_empty:
            reason = "no frames"
            logger.warning("utterance %s (%s/feats.scp): %s; skipped", utt, table.data_dir, reason)
            if skipped is not None:
                skipped.append((utt, reason))
            continue
        yield utt, table.prepare(utt, raw).astype(dtype, copy=False)


class FeatureTable:
    """Random access to a data dir's features, one utterance at a time:
    what :func:`iter_features` does to each utterance (read, check, CMVN,
    deltas), for readers that choose their own order (the streaming
    training data of :mod:`mtlasr.nnet.stream`). Speaker CMVN stats are
    read once per speaker and kept.

    Args: as :func:`iter_features`.

    Raises: FileNotFoundError (feats.scp, cmvn.scp or utt2spk missing),
    ValueError (an unknown ``cmvn_mode``).
    """

    def __init__(self, data_dir: PathLike, norm_vars: bool, delta_order: int, cmvn_mode: str,
                 dim: Optional[int] = None):
        from .datadir import read_table

        if cmvn_mode not in CMVN_MODES:
            raise ValueError(f"cmvn mode '{cmvn_mode}' is not one of {', '.join(CMVN_MODES)}")
        self.data_dir = Path(data_dir)
        self.norm_vars, self.delta_order, self.cmvn_mode, self.dim = norm_vars, delta_order, cmvn_mode, dim
        self.feats_scp = read_table(self.data_dir / "feats.scp")
        self.cmvn_scp = read_table(self.data_dir / "cmvn.scp") if cmvn_mode == "speaker" else {}
        self.utt2spk = read_table(self.data_dir / "utt2spk")
        self._cmvn: Dict[str, np.ndarray] = {}

    def raw(self, utt: str, fd_dict: Optional[dict] = None) -> np.ndarray:
        """The stored matrix of ``utt`` as float32 (``(T, D)`` for features).
        ``fd_dict``: open ark files by name, kept open between calls (kaldiio).

        Raises: KeyError (not in feats.scp), ValueError (unreadable: a
        missing, truncated or foreign ark), naming the utterance and its
        feats.scp entry.
        """
        import kaldiio

        if utt not in self.feats_scp:
            raise KeyError(f"{self.data_dir}/feats.scp: no features for utterance {utt}")
        spec = self.feats_scp[utt]
        try:
            return np.asarray(kaldiio.load_mat(spec, fd_dict=fd_dict), dtype=np.float32)
        except Exception as e:  # kaldiio on a truncated, missing or foreign ark
            raise ValueError(f"utterance {utt}: cannot read its features ({self.data_dir}/feats.scp: {spec}): "
                             f"{e}; recompute them (steps/make_mfcc.sh --force true)") from None

    def prepare(self, utt: str, raw: np.ndarray) -> np.ndarray:
        """CMVN and deltas on ``raw`` ``(T, D) float32``, checked as
        :func:`iter_features` says; returns ``(T, D * (delta_order + 1)) float32``.

        Raises: KeyError, ValueError as :func:`iter_features`.
        """
        spec = self.feats_scp[utt]
        if not np.isfinite(raw).all():
            bad = int((~np.isfinite(raw).all(axis=1)).sum())
            raise ValueError(f"utterance {utt}: non-finite features (NaN or Inf) in {bad} of "
                             f"{raw.shape[0]} frames ({self.data_dir}/feats.scp: {spec})")
        spk = self.utt2spk.get(utt)
        if spk is None:
            raise KeyError(f"{self.data_dir}/utt2spk: no speaker for utterance {utt}")
        if self.cmvn_mode == "none":
            x = raw
        elif self.cmvn_mode == "utterance":
            x = apply_cmvn(raw, cmvn_stats(raw), self.norm_vars)
        else:
            if spk not in self._cmvn:
                self._cmvn[spk] = _speaker_cmvn(self.data_dir, spk, self.cmvn_scp, self.feats_scp, self.utt2spk)
            x = apply_cmvn(raw, self._cmvn[spk], self.norm_vars)
        if self.delta_order:
            x = add_deltas(x, self.delta_order)
        if self.dim is not None and x.shape[1] != self.dim:
            raise ValueError(f"utterance {utt}: feature dimension {x.shape[1]} (raw {raw.shape[1]}, "
                             f"delta order {self.delta_order}) does not match the model's {self.dim} "
                             f"({self.data_dir}/feats.scp: {spec})")
        return x


def _speaker_cmvn(data_dir: Path, spk: str, cmvn_scp: Mapping[str, str], feats_scp: Mapping[str, str],
                  utt2spk: Mapping[str, str]) -> np.ndarray:
    """A speaker's CMVN stats ``(2, D + 1) float64`` from cmvn.scp.

    Raises:
      KeyError: no stats for the speaker.
      ValueError: non-finite stats, naming the speaker's utterance with
        non-finite features that most likely caused them, or else the
        speaker and its cmvn.scp entry.
    """
    import kaldiio

    if spk not in cmvn_scp:
        raise KeyError(f"{data_dir}/cmvn.scp: no CMVN stats for speaker {spk}")
    try:
        stats = np.asarray(kaldiio.load_mat(cmvn_scp[spk]), dtype=np.float64)
    except Exception as e:  # kaldiio on a truncated or missing ark
        raise ValueError(f"speaker {spk}: cannot read its CMVN stats ({data_dir}/cmvn.scp: {cmvn_scp[spk]}): {e}") from None
    if not np.isfinite(stats).all():
        for other in (u for u, s in utt2spk.items() if s == spk and u in feats_scp):
            if not np.isfinite(kaldiio.load_mat(feats_scp[other])).all():
                raise ValueError(f"utterance {other}: non-finite features (NaN or Inf), which also "
                                 f"spoil the CMVN stats of its speaker {spk} ({data_dir}/feats.scp: "
                                 f"{feats_scp[other]})")
        raise ValueError(f"speaker {spk}: non-finite CMVN stats ({data_dir}/cmvn.scp: {cmvn_scp[spk]})")
    return stats


def load_features(data_dir: PathLike, norm_vars: bool = False, delta_order: int = 0,
                  utts=None, cmvn: str = "speaker") -> Dict[str, np.ndarray]:
    """Features of a data dir for the acoustic models, all in memory:
    speaker CMVN applied (or none), deltas optionally added
    (:func:`iter_features`; utterances with no frames are kept, as
    ``(0, D')`` matrices).

    Args:
      data_dir: holds feats.scp, utt2spk and (for speaker CMVN) cmvn.scp.
      norm_vars: variance normalisation too (Kaldi's apply-cmvn --norm-vars).
      delta_order: 0 for static features, 2 for +delta+delta-delta.
      utts: restrict to these utterances (default: all in feats.scp).
      cmvn: ``speaker`` or ``none`` (the networks' ``features.cmvn``).

    Returns:
      utterance -> ``(T, D * (delta_order + 1)) float32``, in feats.scp
      order (or ``utts`` order).

    Raises:
      FileNotFoundError: feats.scp or cmvn.scp missing.
      KeyError: an utterance without features or without a speaker, or a
        speaker without CMVN stats, naming it.
      ValueError: non-finite features or CMVN stats (see
        :func:`iter_features`).
    """
    return dict(iter_features(data_dir, norm_vars, delta_order, cmvn_mode=cmvn, utts=utts,
                              keep_empty=True, dtype=np.float32))


class Throughput:
    """Frames per second of a job: ``add(num_frames)`` per utterance, then ``str()``."""

    def __init__(self):
        self.start = time.time()
        self.frames = 0
        self.utts = 0

    def add(self, num_frames: int) -> None:
        self.frames += int(num_frames)
        self.utts += 1

    def __str__(self) -> str:
        sec = max(time.time() - self.start, 1e-9)
        return f"{self.utts} utterances, {self.frames} frames in {sec:.2f} s ({self.frames / sec:.0f} frames/s)"


class FeatureReader:
    """One job's pass over a data dir's features (:func:`iter_features`,
    float64), counting what it reads for the job's log.

    Iterate it for ``(utt, x)``; afterwards :attr:`skipped` lists the
    ``(utt, reason)`` of the utterances skipped and ``str(reader)`` is
    ``"<n> utterances, <f> frames in <s> s (<r> frames/s); <k> skipped"``.

    Args:
      data_dir: the job's data dir.
      opts: the feature options.
      dim: the model's feature dimension, checked if given.
    """

    def __init__(self, data_dir: PathLike, opts: "FeatureOpts", dim: Optional[int] = None):
        self.data_dir = data_dir
        self.opts = opts
        self.dim = dim
        self.skipped: List[Tuple[str, str]] = []
        self.speed = Throughput()

    @classmethod
    def for_model(cls, model_dir: PathLike, data_dir: PathLike, dim: Optional[int] = None) -> "FeatureReader":
        """Features prepared as recorded in ``model_dir`` (:meth:`FeatureOpts.read`)."""
        return cls(data_dir, FeatureOpts.read(model_dir), dim)

    def __iter__(self) -> Iterator[Tuple[str, np.ndarray]]:
        o = self.opts
        for utt, x in iter_features(self.data_dir, o.norm_vars, o.delta_order, cmvn_mode=o.cmvn_mode,
                                    dim=self.dim, skipped=self.skipped):
            yield utt, x
            self.speed.add(x.shape[0])

    def __str__(self) -> str:
        return f"{self.speed}; {len(self.skipped)} skipped"


# ------------------------------------------------- feature options of a model
CMVN_MODES = ("speaker", "utterance", "none")


def write_feature_opts(model_dir: PathLike, norm_vars: bool, delta_order: int, cmvn_mode: str = "speaker") -> None:
    """Record the feature options in ``model_dir`` (every GMM and UBM step does):
    ``cmvn_opts`` (``--norm-vars=true|false --cmvn-mode=speaker|utterance|none``)
    and ``delta_order``. ``cmvn_mode`` is ``speaker`` for the acoustic
    models, whose features :func:`load_features` reads; the UBM step passes
    its ``--cmvn-mode``."""
    if cmvn_mode not in CMVN_MODES:
        raise ValueError(f"cmvn mode '{cmvn_mode}' is not one of {', '.join(CMVN_MODES)}")
    d = Path(model_dir)
    with atomic_open(d / "cmvn_opts") as f:
        f.write(f"--norm-vars={'true' if norm_vars else 'false'} --cmvn-mode={cmvn_mode}\n")
    with atomic_open(d / "delta_order") as f:
        f.write(f"{int(delta_order)}\n")


def read_feature_opts(model_dir: PathLike) -> Tuple[bool, int]:
    """``(norm_vars, delta_order)`` recorded by :func:`write_feature_opts`.

    Raises:
      FileNotFoundError: ``cmvn_opts`` or ``delta_order`` missing (named).
    """
    d = Path(model_dir)
    for name in ("cmvn_opts", "delta_order"):
        if not (d / name).is_file():
            raise FileNotFoundError(f"{d / name}: feature options not recorded in {d}")
    norm_vars = "--norm-vars=true" in (d / "cmvn_opts").read_text()
    return norm_vars, int((d / "delta_order").read_text())


def read_cmvn_mode(model_dir: PathLike) -> str:
    """The ``--cmvn-mode`` recorded in ``model_dir``/cmvn_opts (``speaker`` if absent)."""
    m = re.search(r"--cmvn-mode=(\S+)", (Path(model_dir) / "cmvn_opts").read_text())
    return m.group(1) if m else "speaker"


@dataclass(frozen=True)
class FeatureOpts:
    """The feature options of a model: CMVN (``cmvn_mode``, one of
    :data:`CMVN_MODES`, and ``norm_vars``) and ``delta_order``."""

    norm_vars: bool
    delta_order: int
    cmvn_mode: str

    @classmethod
    def read(cls, model_dir: PathLike) -> "FeatureOpts":
        """The options recorded in ``model_dir`` (:func:`read_feature_opts`,
        :func:`read_cmvn_mode`)."""
        norm_vars, delta_order = read_feature_opts(model_dir)
        return cls(norm_vars, delta_order, read_cmvn_mode(model_dir))

    def write(self, model_dir: PathLike) -> None:
        """Record them in ``model_dir`` (:func:`write_feature_opts`)."""
        write_feature_opts(model_dir, self.norm_vars, self.delta_order, self.cmvn_mode)
