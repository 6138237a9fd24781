"""Write Kaldi text copies of the models in a model dir.

Usage:
  python3 -m mtlasr.bin.export_kaldi <model-dir> [<out-dir>]

  e.g.: python3 -m mtlasr.bin.export_kaldi exp/mono
        python3 -m mtlasr.bin.export_kaldi exp/extractor exp/extractor/kaldi

Writes into <out-dir> (default <model-dir>/kaldi), under Kaldi's names,
whichever of these <model-dir> holds (symlinks are followed):

  final.mdl   our pickled GMM-HMM -> final.mdl (TransitionModel + AmDiagGmm)
              and tree (ContextDependency)
  final.dubm  diagonal UBM (.npz) -> final.dubm (<DiagGMM>)
  final.ubm   full UBM (.npz)     -> final.ubm (<FullGMM>)
  final.ie    i-vector extractor  -> final.ie (<IvectorExtractor>)

The files are in Kaldi's text format (mtlasr.kaldi_text), which every Kaldi
program reads as it is, e.g. gmm-copy --binary=true <out-dir>/final.mdl
final.mdl, show-transitions phones.txt <out-dir>/final.mdl, gmm-global-copy,
fgmm-global-copy, ivector-extract <out-dir>/final.ie ...
"""

import logging
import sys
from pathlib import Path

from mtlasr.cli import make_parser, program
from mtlasr import gmm, ivector, kaldi_text

logger = logging.getLogger("export_kaldi")

MODELS = ("final.mdl", "final.dubm", "final.ubm", "final.ie")


def get_parser():
    p = make_parser(__doc__)
    p.add_argument("model_dir", help="dir holding final.mdl, final.dubm, final.ubm and/or final.ie")
    p.add_argument("out_dir", nargs="?", default=None, help="where to write (default: <model-dir>/kaldi)")
    return p


def _write_ubm(src: Path, out: Path) -> str:
    """A UBM (.npz, diagonal or full) in Kaldi text; returns what it was."""
    ubm = ivector.load_gmm(src)
    full = isinstance(ubm, ivector.FullGmm)
    if full != (src.name == "final.ubm"):
        logger.warning("%s holds a %s-covariance GMM; Kaldi expects %s there", src,
                       "full" if full else "diagonal", "full" if src.name == "final.ubm" else "diagonal")
    (kaldi_text.write_full_gmm if full else kaldi_text.write_diag_gmm)(out / src.name, ubm)
    return f"{'full' if full else 'diagonal'} UBM, {ubm.num_gauss} Gaussians, dim {ubm.dim}"


def export(model_dir: Path, out_dir: Path) -> list:
    """Write the Kaldi copies; returns the names written.

    Raises:
      FileNotFoundError: ``model_dir`` holds none of :data:`MODELS`, or one
        of them is a dangling symlink.
      ValueError: a model the writers refuse (see mtlasr.kaldi_text).
    """
    found = [n for n in MODELS if (model_dir / n).exists() or (model_dir / n).is_symlink()]  # dangling: an error
    if not found:
        raise FileNotFoundError(f"{model_dir}: nothing to export (no {', '.join(MODELS)})")
    written = []
    for name in found:
        src = model_dir / name
        if name == "final.mdl":
            tm, tree, am = gmm.load_model(src)
            kaldi_text.write_gmm_hmm(out_dir / "final.mdl", tm, am)
            kaldi_text.write_tree(out_dir / "tree", tree)
            what = f"GMM-HMM, {am.num_pdfs} pdfs, {am.num_gauss} Gaussians, dim {am.dim}; and tree"
            written += ["final.mdl", "tree"]
        elif name == "final.ie":
            ie = ivector.IvectorExtractor.load(src)
            kaldi_text.write_ivector_extractor(out_dir / name, ie)
            what = f"i-vector extractor, {ie.num_gauss} Gaussians, dim {ie.feat_dim} -> {ie.ivector_dim}"
            written.append(name)
        else:
            what = _write_ubm(src, out_dir)
            written.append(name)
        logger.info("wrote %s (%s) from %s", out_dir / name, what, src)
    return written


def run(args):
    model_dir = Path(args.model_dir)
    out_dir = Path(args.out_dir) if args.out_dir else model_dir / "kaldi"
    export(model_dir, out_dir)
    return 0


def main(argv=None):
    return program(get_parser(), run, argv, logger)


if __name__ == "__main__":
    sys.exit(main())
