"""Network outputs for decoding: hybrid log-likelihoods, or CTC log-probabilities.

Usage:
  python3 -m mtlasr.bin.nnet_forward [--device cpu] <nnet-dir> <data-dir> <out.ark>

  e.g.: python3 -m mtlasr.bin.nnet_forward exp/lstm data/test/split2/1 exp/lstm/decode_test/loglikes.1.ark

Reads <nnet-dir>/final.pt, config.yaml (feature options, chunk geometry) and
ali_train_pdf.counts (priors). Each utterance is cut into the same chunks
as in training (left context, label delay), or with ``chunk.carry`` (state
carried from chunk to chunk in training) run whole with the label delay;
only the main head is used.
Writes ``(T, num_pdfs) float32`` matrices, log P(s|x) - log P(s)
(Bourlard and Morgan, 1994).

A CTC model (``model.criterion: ctc``) reads each utterance whole and
writes ``(T', V) float32`` log-softmax outputs over its units (T' = output
frames after subsampling; column 0 = blank), with --scp beside the ark.
"""

import logging
import sys
import time
from pathlib import Path

from mtlasr.cli import ark_writer, make_parser, program

logger = logging.getLogger("nnet_forward")


def read_counts(path):
    """Kaldi vector text ``[ c1 c2 ... ]`` -> numpy float64."""
    import numpy as np

    txt = Path(path).read_text().replace("[", " ").replace("]", " ")
    return np.array([float(x) for x in txt.split()], dtype=np.float64)


def get_parser():
    p = make_parser(__doc__, "nnet_dir", "data_dir", "out_ark")
    p.add_argument("--device", default="cpu")
    p.add_argument("--num-threads", type=int, default=1)
    p.add_argument("--prior-floor", type=float, default=1e-8, help="(default %(default)s)")
    p.add_argument("--scp", default=None, help="also write this scp of the ark")
    return p


def run(args):
    import torch

    from mtlasr.features import load_features
    from mtlasr.nnet.data import ChunkSpec, log_priors, utterance_output, utterance_input
    from mtlasr.nnet.build import load_for_inference

    torch.set_num_threads(args.num_threads)
    device = torch.device(args.device)
    nnet = Path(args.nnet_dir)
    model, cfg = load_for_inference(nnet / "final.pt", device)
    if cfg["model"]["criterion"] == "ctc":
        return forward_ctc(args, model, cfg, device)
    spec = ChunkSpec(**cfg["chunk"])
    prior = torch.from_numpy(log_priors(read_counts(nnet / "ali_train_pdf.counts"), args.prior_floor))
    fc = cfg["features"]
    feats = load_features(args.data_dir, norm_vars=fc["norm_vars"], delta_order=fc["delta_order"],
                          cmvn=fc.get("cmvn", "speaker"))
    t0, frames = time.time(), 0
    with torch.no_grad(), ark_writer(args.out_ark) as w:
        for utt, x in feats.items():
            out = model(utterance_input(x, spec).to(device), heads=["main"])["main"]
            logp = torch.log_softmax(utterance_output(out, spec, x.shape[0]).float().cpu(), dim=-1)
            w(utt, (logp - prior).numpy())
            frames += x.shape[0]
    logger.info("%d utterances, %d frames in %.1f s", len(feats), frames, time.time() - t0)
    return 0


def forward_ctc(args, model, cfg, device):
    """Whole-utterance CTC log-probabilities ``(T', V)`` per utterance."""
    import torch

    from mtlasr.features import load_features

    fc = cfg["features"]
    feats = load_features(args.data_dir, norm_vars=fc["norm_vars"], delta_order=fc["delta_order"],
                          cmvn=fc.get("cmvn", "speaker"))
    t0, frames = time.time(), 0
    with torch.no_grad(), ark_writer(args.out_ark, args.scp) as w:
        for utt, x in feats.items():
            if x.shape[0] == 0:
                logger.warning("utterance %s has no frames; left out", utt)
                continue
            xt = torch.from_numpy(x)[None].to(device)
            out = model(xt, heads=["main"], lengths=torch.tensor([x.shape[0]], device=device))["main"]
            w(utt, torch.log_softmax(out[0].float(), dim=-1).cpu().numpy())
            frames += x.shape[0]
    secs = time.time() - t0
    logger.info("%d utterances, %d frames (%.1f s of audio at 10 ms) in %.1f s: real-time factor %.4f",
                len(feats), frames, frames / 100, secs, secs / max(frames / 100, 1e-9))
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
