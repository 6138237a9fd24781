"""Check a wav2vec2 checkpoint directory and convert it into the plain
encoder directory that ``model.w2v2_dir`` reads.

Usage:
  python3 -m mtlasr.bin.prepare_wav2vec2 <checkpoint-dir> <out-dir>

  e.g.: python3 -m mtlasr.bin.prepare_wav2vec2 /models/wav2vec2-base exp/w2v2_base

<checkpoint-dir> is a directory as transformers' ``save_pretrained`` writes
it (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``) of a
``Wav2Vec2Model``, ``Wav2Vec2ForPreTraining`` or ``Wav2Vec2ForCTC`` (e.g. a
copy of facebook/wav2vec2-base fetched elsewhere: nothing is downloaded).
It is read with ``local_files_only`` (mtlasr.nnet.wav2vec2.load_wav2vec2:
a missing or foreign config, missing weights or weights that do not match
the config are errors naming the directory). The encoder alone (no
quantiser or CTC layer) is written to <out-dir> through a temporary name,
reloaded, and checked to give the same outputs as the original on a
second of noise. <out-dir>/summary.txt gives its parameters, size on disk
and architecture, printed too.
"""

import logging
import os
import shutil
import sys
from pathlib import Path

from mtlasr.cli import make_parser, program

logger = logging.getLogger("prepare_wav2vec2")


def get_parser():
    return make_parser(__doc__, "checkpoint_dir", "out_dir")


def summary(model, out_dir: Path) -> str:
    """One line per fact of a ``Wav2Vec2Model`` and its directory."""
    c = model.config
    stride = 1
    for s in c.conv_stride:
        stride *= s
    size = sum(f.stat().st_size for f in out_dir.iterdir() if f.is_file())
    n = sum(p.numel() for p in model.parameters())
    return "\n".join([
        f"parameters {n} ({n / 1e6:.2f} M)",
        f"size on disk {size / 1e6:.1f} MB",
        f"transformer {c.num_hidden_layers} layers x {c.hidden_size} (heads {c.num_attention_heads}, "
        f"feed-forward {c.intermediate_size}), {'pre' if c.do_stable_layer_norm else 'post'}-layer-norm",
        f"CNN {len(c.conv_dim)} layers ({c.feat_extract_norm} norm), stride {stride} samples "
        f"({1000 * stride / 16000:.0f} ms per token at 16 kHz)",
    ]) + "\n"


def run(args):
    import torch

    from mtlasr.nnet.wav2vec2 import load_wav2vec2

    model = load_wav2vec2(args.checkpoint_dir).eval()
    out = Path(args.out_dir)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    again = load_wav2vec2(str(tmp)).eval()
    g = torch.Generator().manual_seed(0)
    wav = torch.randn(1, 16000, generator=g)
    with torch.no_grad():
        a = model(wav).last_hidden_state
        b = again(wav).last_hidden_state
    if not torch.equal(a, b):
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValueError(f"{args.checkpoint_dir}: the converted encoder does not reproduce the original's "
                         f"outputs (largest difference {float((a - b).abs().max()):.3g})")
    text = summary(again, tmp)
    (tmp / "summary.txt").write_text(text)
    old = out.with_name(out.name + ".old")
    if out.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
    print(f"{out}: wav2vec2 encoder from {args.checkpoint_dir}\n{text}", end="")
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
