"""Utterance embeddings from a network's pooled auxiliary head (e.g. the
speaker embeddings of seed 003's speaker head), for verification scoring.

Usage:
  python3 -m mtlasr.bin.extract_embeddings [options] <nnet-dir-or-final.pt> <data-dir> <out-dir>

  e.g.: python3 -m mtlasr.bin.extract_embeddings --task spk exp/w2v2_mtl data/test exp/w2v2_mtl/emb_test

For every utterance of <data-dir> (read whole, with the network's own
feature options), the head of --task reads its fork layer and pools it over
the utterance (mean, max, lse, the CLS output for first+cls pooling, or
the mean over the frames where the CTC output is (not) blank);
the pooled vector after the head's hidden layers, the input of its output
layer, is the embedding (seed 003 sec. 3.1.1: E_k). Writes
<out-dir>/embeddings.{ark,scp} (``(D,) float32`` Kaldi vectors keyed by
utterance), scored by ``mtlasr.bin.ivector_eer`` like i-vectors.
Utterances with no frames are left out with a warning.
"""

import logging
import sys
import time
from pathlib import Path

from mtlasr.cli import ark_writer, make_parser, program

logger = logging.getLogger("extract_embeddings")


def get_parser():
    p = make_parser(__doc__, "nnet", "data_dir", "out_dir")
    p.add_argument("--task", default="spk", help="the auxiliary head (a pooled one) (default %(default)s)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--num-threads", type=int, default=1)
    return p


def embed_utterances(model, feats, task, device):
    """utterance -> ``(D,) float32`` embedding of head ``task`` (see the
    module docstring; ``AcousticModel.forward(..., embed=True)``); feats:
    utterance -> ``(T, D_in)``.

    Raises: ValueError when the head is not pooled."""
    import torch

    if model.heads[task].pooling == "none":
        raise ValueError(f"head {task} is not pooled (pooling none): it has no utterance embedding")
    out = {}
    with torch.no_grad():
        for utt, x in feats.items():
            if x.shape[0] == 0:
                logger.warning("utterance %s has no frames; left out", utt)
                continue
            xt = torch.from_numpy(x)[None].to(device)
            e = model(xt, heads=[task], lengths=torch.tensor([x.shape[0]], device=device), embed=True)[task]
            out[utt] = e[0].float().cpu().numpy()
    return out


def run(args):
    import torch

    from mtlasr.features import load_features
    from mtlasr.nnet.build import load_for_inference

    torch.set_num_threads(args.num_threads)
    device = torch.device(args.device)
    ckpt = Path(args.nnet) / "final.pt" if Path(args.nnet).is_dir() else Path(args.nnet)
    if not ckpt.is_file():
        raise FileNotFoundError(f"{ckpt}: no such checkpoint")
    model, cfg = load_for_inference(ckpt, device, heads=[args.task])
    fc = cfg["features"]
    feats = load_features(args.data_dir, norm_vars=fc["norm_vars"], delta_order=fc["delta_order"],
                          cmvn=fc.get("cmvn", "speaker"))
    t0 = time.time()
    emb = embed_utterances(model, feats, args.task, device)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with ark_writer(str(out / "embeddings.ark"), str(out / "embeddings.scp")) as w:
        for utt, e in emb.items():
            w(utt, e)
    logger.info("%d embeddings of dimension %d (head %s) in %.1f s", len(emb),
                len(next(iter(emb.values()))) if emb else 0, args.task, time.time() - t0)
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
