"""Compute Kaldi MFCCs for the utterances of a wav.scp (or, with
--raw-frames S, the waveform cut into frames of S samples).

Usage:
  python3 -m mtlasr.bin.compute_mfcc --channel -1 [--config conf/mfcc.conf] [--raw-frames S] <wav.scp> <out.ark> <out.scp>

  e.g.: python3 -m mtlasr.bin.compute_mfcc --channel -1 --config conf/mfcc.conf \\
          data/train/split2/1/wav.scp mfcc/raw_mfcc_train.1.ark mfcc/raw_mfcc_train.1.scp

The ark, then ``<out.scp minus .scp>.utt2num_frames`` and ``.skipped``
(``utt reason`` of every utterance shorter than one frame, which gets no
features, as in Kaldi), are written under temporary names; the scp, which
points into the ark, is moved into place last, so an scp on disk always
refers to a complete job. Audio that is missing, unreadable, truncated,
empty, at another sample rate than the config's, or with several channels
when --channel is -1 stops the job with an error naming the utterance and
the file (mtlasr.audio).
"""

import logging
import sys
import time

from mtlasr.cli import ark_writer, make_parser, program
from mtlasr.datadir import atomic_open, read_table
from mtlasr.audio import AudioError, read_audio
from mtlasr.features import compute_mfcc, mfcc_options

logger = logging.getLogger("compute_mfcc")


def get_parser():
    p = make_parser(__doc__, "wav_scp", "out_ark", "out_scp")
    p.add_argument("--config", default=None, metavar="MFCC.CONF", help="Kaldi-style MFCC options (--name=value lines)")
    p.add_argument("--channel", type=int, required=True,
                   help="-1: the audio must be mono; 0, 1, ...: the channel to use (Kaldi's --channel)")
    p.add_argument("--raw-frames", type=int, default=0, metavar="S",
                   help="> 0: write the waveform (int16 scale) as (floor(N / S), S) frames instead of MFCCs; "
                        "the audio must still be at the config's sample rate (default %(default)s: MFCCs)")
    return p


def raw_frames(samples, sr: int, want_sr: float, per_frame: int):
    """The waveform ``(N,)`` as ``(floor(N / S), S) float32`` frames (the
    last partial frame dropped), the input of the wav2vec2 encoder.

    Raises: ValueError when ``sr`` is not the expected rate."""
    import numpy as np

    if int(sr) != int(want_sr):
        raise ValueError(f"sample rate {sr} Hz, expected {int(want_sr)} Hz")
    n = len(samples) // per_frame
    return np.asarray(samples[: n * per_frame], dtype=np.float32).reshape(n, per_frame)


def run(args):
    import numpy as np

    opts = mfcc_options(args.config)
    wavs = read_table(args.wav_scp)
    start, frames = time.time(), 0
    num_frames = {}
    base = args.out_scp[:-4] if args.out_scp.endswith(".scp") else args.out_scp
    skipped = []
    try:
        with ark_writer(args.out_ark, args.out_scp) as writer:
            for i, (utt, spec) in enumerate(wavs.items()):
                samples, sr = read_audio(spec, utt, args.channel)
                try:
                    if args.raw_frames > 0:
                        m = raw_frames(samples, sr, opts.frame_opts.samp_freq, args.raw_frames)
                    else:
                        m = compute_mfcc(samples, sr, opts)
                except ValueError as e:
                    raise ValueError(f"utterance {utt}: audio {spec}: {e} (config {args.config})") from None
                if m.shape[0] == 0:
                    logger.warning("utterance %s: %s is shorter than one frame (%d samples); skipped",
                                   utt, spec, len(samples))
                    skipped.append(f"{utt} shorter than one frame ({len(samples)} samples): {spec}")
                    continue
                writer(utt, m.astype(np.float32))
                num_frames[utt] = m.shape[0]
                frames += m.shape[0]
                if (i + 1) % 500 == 0:
                    logger.info("%d/%d utterances", i + 1, len(wavs))
            # the side files first: the scp, moved into place last, marks the job done
            with atomic_open(base + ".utt2num_frames") as f:
                f.write("".join(f"{utt} {n}\n" for utt, n in num_frames.items()))
            with atomic_open(base + ".skipped") as f:
                f.write("".join(line + "\n" for line in skipped))
    except AudioError as e:
        raise ValueError(str(e)) from None
    el = time.time() - start
    logger.info("%d utterances, %d frames in %.2f s (%.0f frames/s)", len(num_frames), frames, el,
                frames / max(el, 1e-9))
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
