"""Train a neural acoustic model: an LSTM-HMM on GMM alignments (frame
cross-entropy on pdfs), or an end-to-end CTC model on unit sequences
(``model.criterion: ctc`` in the config).

Usage:
  python3 -m mtlasr.bin.train_nnet [options] <train-data> <train-ali-dir> <exp-dir>
  python3 -m mtlasr.bin.train_nnet [options] <train-data> <units-dir> <exp-dir>   (criterion ctc)

  e.g.: python3 -m mtlasr.bin.train_nnet --config conf/lstm.yaml \\
          --valid-data data/dev --valid-ali exp/mono_ali_dev \\
          data/train exp/mono_ali exp/lstm
        # override any config entry:
        python3 -m mtlasr.bin.train_nnet --config conf/lstm.yaml --set train.max_epochs=2 ...
        # add an auxiliary task (seed 000: i-vector regression, lambda 1e-4):
        python3 -m mtlasr.bin.train_nnet --config conf/lstm.yaml --config conf/tasks/ivector.yaml \
          --set tasks.ivector.weight=1e-4 ...

Reads the transition model from <train-ali-dir>/final.mdl and copies it
into <exp-dir> (the decoder needs it); writes the pdf counts used as priors
(``ali_train_pdf.counts``, Kaldi vector text), the resolved ``config.yaml``,
per-epoch checkpoints, ``history.json``, ``train_curve.png`` and ``final.pt``.
Auxiliary tasks (the config's ``tasks`` section) read their targets for
the training and the validation data dir from ``tasks.<name>.source``;
a missing file or an utterance without a target stops before training.
CTC: <units-dir> holds units.txt and unit_type (utils/prepare_units.sh,
steps/train_sentencepiece.sh), copied into <exp-dir>; transcripts are read
from <data>/<--text-file>; a unit outside units.txt stops with the
utterance named; utterances too short for their units are skipped and
counted; --extra-data adds utterances without transcripts that train the
auxiliary tasks only (seed 002 sec. 4.4).
A rerun resumes after the last finished epoch unless --force. Under torchrun
(``torchrun --standalone --nproc_per_node N -m mtlasr.bin.train_nnet ...``)
each of the N processes trains on its share of every minibatch step
(DistributedDataParallel; NCCL on GPUs, one per process by LOCAL_RANK; gloo
on CPUs): ``train.minibatch`` (and ``sequence.max_frames``) is per process,
and the model is that of one process with N times the minibatch, within
float rounding, where no random draw in the network (dropout) and no frame
cap cutting a CTC minibatch makes them differ (mtlasr.nnet.train.Trainer).
Rank 0 alone writes files.
"""

import logging
import os
import shutil
import sys
import time
from pathlib import Path

from mtlasr.cli import make_parser

logger = logging.getLogger("train_nnet")


def get_parser():
    p = make_parser(__doc__, "train_data", "ali_dir", "exp_dir")
    p.add_argument("--config", action="append", default=[],
                   help="YAML config (default: built-in seed-000 settings); repeat to add files, "
                        "later ones update earlier ones (e.g. a model config, then task configs)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config entry, e.g. train.max_epochs=2 (repeatable)")
    p.add_argument("--valid-data", default=None, help="held-out data dir for the validation loss")
    p.add_argument("--valid-ali", default=None, help="alignment dir of --valid-data (ce)")
    p.add_argument("--text-file", default="text",
                   help="ctc: the transcript file of each data dir (default %(default)s; e.g. text.words)")
    p.add_argument("--extra-data", default=None,
                   help="ctc: a data dir whose utterances train only the auxiliary tasks (no transcripts used)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default %(default)s)")
    p.add_argument("--force", action="store_true", help="start over, ignoring existing checkpoints")
    p.add_argument("--count-flops", action="store_true",
                   help="load the data, build the model, print the FLOPs of one training step per "
                        "labelled frame (mtlasr.nnet.evaluate.step_flops), then exit without training")
    p.add_argument("--check-config", action="store_true",
                   help="only check the configs and overrides (no data is read), then exit")
    p.add_argument("--list-inputs", action="store_true",
                   help="check the config and print the files the tasks' targets are read from "
                        "(for the step's record), then exit; nothing is trained or written")
    return p


def load_split(data_dir, ali_dir, tm, cfg, spec, what, train_aux=None):
    """ChunkDataset of a data dir with its alignment (train.data stream: a
    StreamChunkDataset); logs skipped utterances.
    ``train_aux``: the training set's task targets (their label classes are reused)."""
    from mtlasr import gmm
    from mtlasr.nnet.data import ChunkDataset
    from mtlasr.nnet.stream import StreamChunkDataset, compact_labels, dataset_source

    stream = cfg["train"]["data"] == "stream"
    feats = dataset_source(data_dir, cfg["features"], stream)
    from mtlasr.nnet.targets import load_targets

    shrink = compact_labels if stream else (lambda y: y)  # stream: int16 pdf ids, kept all through training
    phones = {} if any(t["targets"] == "frame_label" for t in cfg["tasks"].values()) else None
    labels = {}
    for u, a in gmm.iter_ali_dir(ali_dir):  # one ali.N.gz in memory at a time
        labels[u] = shrink(gmm.ali_to_pdf(tm, a))
        if phones is not None and u in feats:
            phones[u] = gmm.ali_to_phones(tm, a)
    usable = [u for u in feats if u in labels]
    aux = {name: load_targets(name, tspec, data_dir, usable,
                              train_aux[name].classes if train_aux else None, phones)
           for name, tspec in cfg["tasks"].items()}
    for name, t in aux.items():
        logger.info("%s: task %s: %d-dim %s targets from %s", what, name, t.dim, t.kind, t.source)
        if train_aux and t.dim != train_aux[name].dim:
            raise ValueError(f"task {name}: the {what} targets ({t.source}) are {t.dim}-dim, the training "
                             f"targets ({train_aux[name].source}) {train_aux[name].dim}-dim")
        if t.kind == "utt_label":
            unknown = sum(int(v) < 0 for v in t.values.values())
            if unknown:
                logger.info("%s: task %s: %d of %d utterances have labels unseen in training; their "
                            "loss is not counted", what, name, unknown, len(t.values))
    ds = (StreamChunkDataset(feats, labels, spec, aux, cfg["train"]["buffer_frames"]) if stream
          else ChunkDataset(feats, labels, spec, aux))
    for utt, why in list(ds.skipped.items())[:10]:
        logger.warning("%s: utterance %s skipped: %s", what, utt, why)
    if ds.skipped:
        logger.warning("%s: %d of %d utterances skipped", what, len(ds.skipped), len(feats))
    if not ds.utts:
        raise ValueError(f"{what}: no utterance of {data_dir} has an alignment in {ali_dir}")
    logger.info("%s: %d utterances, %d frames, %d chunks", what, len(ds.utts), ds.num_frames, len(ds))
    return ds, labels


def load_split_ctc(data_dir, table, cfg, what, out_frames, text_file, train_aux=None, extra_dir=None):
    """SequenceDataset of a data dir (+ untranscribed ``extra_dir``) for CTC;
    logs the skipped utterances with their count.

    Raises: ValueError naming the utterance with a unit outside the table,
    or when no utterance is usable; FileNotFoundError for a missing text.
    """
    from pathlib import Path

    import numpy as np

    from mtlasr.datadir import read_table
    from mtlasr.nnet.seqdata import SequenceDataset
    from mtlasr.nnet.stream import FeatureSource, StreamSequenceDataset, dataset_source
    from mtlasr.nnet.targets import load_targets, source_path

    stream = cfg["train"]["data"] == "stream"
    feats = dataset_source(data_dir, cfg["features"], stream)
    tpath = Path(data_dir) / text_file
    if not tpath.is_file():
        raise FileNotFoundError(f"{what}: transcript file {tpath} does not exist (--text-file)")
    texts = {u: t for u, t in read_table(tpath, allow_empty_value=True).items() if u in feats}
    labels = {u: table.encode(t, u) for u, t in texts.items() if t}
    extra_feats = {}
    if extra_dir:
        extra_feats = dataset_source(extra_dir, cfg["features"], stream)
        clash = sorted(set(extra_feats) & set(feats))
        if clash:
            raise ValueError(f"--extra-data {extra_dir}: utterance {clash[0]} is also in {data_dir}")
    aux = {}
    for name, tspec in cfg["tasks"].items():
        t = load_targets(name, tspec, data_dir, list(feats), train_aux[name].classes if train_aux else None)
        if extra_feats:
            e = load_targets(name, tspec, extra_dir, list(extra_feats), None)
            if t.classes is not None:  # the extra utterances' labels join the classes
                new = [c for c in e.classes if c not in t.classes]
                t.classes = t.classes + new
                t.dim = len(t.classes)
                idx = {c: i for i, c in enumerate(t.classes)}
                for u, v in e.values.items():
                    t.values[u] = np.asarray(idx[e.classes[int(v)]], dtype=np.int64)
            else:
                t.values.update(e.values)
        aux[name] = t
        logger.info("%s: task %s: %d-dim %s targets from %s", what, name, t.dim, t.kind, t.source)
    groups = None
    if cfg["train"]["curriculum"]:
        gpath = source_path(cfg["sequence"]["curriculum_source"], data_dir)
        if not gpath.is_file():
            raise FileNotFoundError(f"{what}: train.curriculum needs {gpath} (sequence.curriculum_source)")
        groups = read_table(gpath)
    kw = dict(untranscribed=list(extra_feats), groups=groups,
              max_utt_frames=cfg["sequence"]["max_utt_frames"] if what == "train" else 0)
    ds = (StreamSequenceDataset(FeatureSource.merged(feats, extra_feats) if extra_feats else feats, labels,
                                out_frames, aux, **kw) if stream
          else SequenceDataset({**feats, **extra_feats}, labels, out_frames, aux, **kw))
    reasons = {}
    for utt, why in ds.skipped.items():
        key = why.split(":")[0]
        reasons[key] = reasons.get(key, 0) + 1
    for utt, why in list(ds.skipped.items())[:5]:
        logger.warning("%s: utterance %s skipped: %s", what, utt, why)
    if ds.skipped:
        logger.warning("%s: %d of %d utterances skipped (%s)", what, len(ds.skipped), len(feats) + len(extra_feats),
                       ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items())))
    if not ds.utts:
        raise ValueError(f"{what}: no usable utterance in {data_dir}")
    logger.info("%s: %d utterances (%d untranscribed), %d frames", what, len(ds.utts), ds.num_untranscribed,
                ds.num_frames)
    return ds


def check_config(args) -> int:
    """--check-config: 0 if the configs and overrides load, else 1 after
    logging what is wrong (naming the file or override)."""
    from mtlasr.cli import LOG_FORMAT, error_text
    from mtlasr.nnet.config import load_config

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    try:
        cfg = load_config(args.config or None, args.set)
    except (KeyError, ValueError, TypeError, OSError) as e:
        logger.error("bad config: %s", error_text(e))
        return 1
    logger.info("config OK: %d shared layers, tasks: %s", cfg["model"]["num_layers"], ", ".join(cfg["tasks"]) or "none")
    return 0


def main(argv=None):
    args = get_parser().parse_args(argv)
    if args.check_config:
        return check_config(args)
    import torch
    import torch.distributed as dist

    from mtlasr import gmm
    from mtlasr.cli import error_text
    from mtlasr.nnet.config import load_config, save_config
    from mtlasr.nnet.data import ChunkSpec, pdf_counts
    from mtlasr.threads import set_torch_threads

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format=f"%(asctime)s [rank {rank}] %(name)s %(levelname)s %(message)s")
    if args.device == "auto":
        device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    if world_size > 1:
        if device.type == "cuda":  # one GPU per process: the process's local rank, unless --device names one
            if device.index is None:
                device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    exp = Path(args.exp_dir)
    try:
        cfg = load_config(args.config or None, args.set)
    except (KeyError, ValueError, TypeError, OSError) as e:
        logger.error("bad config: %s", error_text(e))
        return 1
    if args.list_inputs:
        from mtlasr.nnet.targets import source_path, task_input_files

        dirs = [d for d in (args.train_data, args.valid_data, args.extra_data) if d]
        files = task_input_files(cfg["tasks"], dirs)
        what = {f: "task target file" for f in files}
        if cfg["model"]["criterion"] == "ctc":  # transcripts, units, curriculum labels, initial model
            more = [Path(d) / args.text_file for d in dirs[:2]]
            more += [Path(args.ali_dir) / f for f in ("units.txt", "unit_type", "sp.model")
                     if f != "sp.model" or (Path(args.ali_dir) / f).is_file()]
            if args.extra_data:
                more += [Path(args.extra_data) / f for f in ("feats.scp", "cmvn.scp")]
            if cfg["train"]["curriculum"]:
                more.append(source_path(cfg["sequence"]["curriculum_source"], args.train_data))
            if cfg["train"]["init"]:
                more.append(Path(cfg["train"]["init"]))
            if cfg["model"]["encoder"] == "wav2vec2" and cfg["model"]["w2v2_dir"]:
                from mtlasr.nnet.wav2vec2 import WEIGHT_FILES

                w = Path(cfg["model"]["w2v2_dir"])
                more += [w / "config.json", next((w / f for f in WEIGHT_FILES if (w / f).is_file()),
                                                 w / WEIGHT_FILES[0])]
            what.update({f: "input" for f in more})
            files += more
        missing = [f for f in files if not f.is_file()]
        if missing:
            logger.error("bad config: the %s %s does not exist", what[missing[0]], missing[0])
            return 1
        print("\n".join(str(f) for f in files))
        return 0
    exp.mkdir(parents=True, exist_ok=True)
    # at most the job's cores (mtlasr.threads), shared by the processes torchrun starts on this node
    set_torch_threads(cfg["train"]["num_threads"], "train.num_threads",
                      int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if device.type == "cpu" else 1)
    spec = ChunkSpec(**cfg["chunk"])
    if args.force and rank == 0:
        for f in list(exp.glob("epoch-*.pt")) + [exp / "checkpoint.pt", exp / "best.pt", exp / "final.pt"]:
            f.unlink(missing_ok=True)
    t0 = time.time()
    if cfg["model"]["criterion"] == "ctc":
        return train_ctc(args, cfg, exp, device, rank, world_size, t0)
    mdl = Path(args.ali_dir) / "final.mdl"
    tm = gmm.load_transition_model(mdl)
    try:
        train, labels = load_split(args.train_data, args.ali_dir, tm, cfg, spec, "train")
        valid = None
        if args.valid_data:
            valid, _ = load_split(args.valid_data, args.valid_ali, tm, cfg, spec, "valid", train.aux)
    except (OSError, KeyError, ValueError) as e:
        logger.error("%s", e)
        return 1
    short = [u for u, y in zip(train.utts, train.labels) if len(y) < spec.delay + 1]
    if short:
        logger.warning("%d utterances are shorter than the label delay (%d frames), e.g. %s",
                       len(short), spec.delay, short[0])
    if rank == 0:
        shutil.copyfile(mdl, exp / "final.mdl")
        counts = pdf_counts({u: labels[u] for u in train.utts}, tm.num_pdfs)
        with open(exp / "ali_train_pdf.counts", "w") as f:
            f.write("[ " + " ".join(str(int(c)) for c in counts) + " ]\n")
        save_config(cfg, exp / "config.yaml")
        (exp / "cmdline").write_text(" ".join(sys.argv) + "\n")
        logger.info("config: %s", cfg)
        logger.info("data loaded in %.1f s; %d pdfs (%d never seen in training)", time.time() - t0,
                    tm.num_pdfs, int((counts == 0).sum()))
    return fit(args, cfg, train, valid, tm.num_pdfs, exp, device, rank, world_size)


def train_ctc(args, cfg, exp, device, rank, world_size, t0):
    """Load the CTC data, copy the unit table into ``exp``, train."""
    from mtlasr.nnet.config import save_config
    from mtlasr.units import UnitTable

    try:
        table = UnitTable(args.ali_dir)
        sub = cfg["model"]["subsampling"]  # every conv layer keeps ceil(T / stride) frames

        def out_frames(t):
            return -(-t // sub)
        train = load_split_ctc(args.train_data, table, cfg, "train", out_frames, args.text_file,
                               extra_dir=args.extra_data)
        valid = None
        if args.valid_data:
            valid = load_split_ctc(args.valid_data, table, cfg, "valid", out_frames, args.text_file, train.aux)
    except (OSError, KeyError, ValueError) as e:
        logger.error("%s", e)
        return 1
    if rank == 0:
        for f in ("units.txt", "unit_type", "sp.model"):
            if (Path(args.ali_dir) / f).is_file():
                shutil.copyfile(Path(args.ali_dir) / f, exp / f)
        save_config(cfg, exp / "config.yaml")
        (exp / "cmdline").write_text(" ".join(sys.argv) + "\n")
        logger.info("config: %s", cfg)
        logger.info("data loaded in %.1f s; %d output units with the blank (%s)", time.time() - t0, len(table),
                    table.unit_type)
    return fit(args, cfg, train, valid, len(table), exp, device, rank, world_size)


def fit(args, cfg, train, valid, num_outputs, exp, device, rank, world_size):
    """Build the trainer, then count FLOPs (--count-flops) or train."""
    import numpy as np
    import torch.distributed as dist

    from mtlasr.nnet.train import Trainer

    try:
        trainer = Trainer(cfg, train, valid, num_outputs, exp, device, rank, world_size)
    except ValueError as e:
        logger.error("%s", e)
        return 1
    nparams = sum(p.numel() for p in trainer.model.parameters())
    logger.info("model: %d parameters on %s%s", nparams, device,
                f" (rank 0 of {world_size} processes; train.minibatch is per process)" if world_size > 1 else "")
    if args.count_flops:
        from mtlasr.nnet.evaluate import step_flops

        flops, frames = step_flops(trainer.model, train, cfg["train"]["minibatch"], device, cfg["tasks"])
        logger.info("one training step: %.0f FLOPs for %d labelled frames", flops, frames)
        print(f"{flops / frames / 1e6:.4f} MFLOP per training frame")
        return 0
    if not args.force:
        trainer.try_resume()
    best = trainer.run()
    if rank == 0:
        hist = trainer.history
        import resource  # peak resident memory of this process (Linux: kB)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        logger.info("training done: %d epochs, mean %.1f s/epoch, mean %.0f frames/s; best epoch %d; "
                    "peak memory %.0f MB", len(hist), float(np.mean([r["seconds"] for r in hist])),
                    float(np.mean([r["frames_per_second"] for r in hist])), best["epoch"], peak_mb)
    if world_size > 1:
        # every rank waits for rank 0's last writes, and the DistributedDataParallel
        # model (its reducer holds the process group) goes before the group does:
        # a rank that tore down its group while the other still used it, or with
        # the reducer alive, was seen to abort at exit ("terminate called without
        # an active exception")
        dist.barrier()
        del trainer
        import gc

        gc.collect()
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
