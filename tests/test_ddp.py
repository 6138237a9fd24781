"""Multi-process training for real: ``python -m torch.distributed.run
--standalone --nproc_per_node 2 -m mtlasr.bin.train_nnet`` (torchrun) with
gloo on CPU, one thread per process, on tiny data dirs built here.

For the chunked cross-entropy trainer, with and without state carry-over
(chunk.carry), (two auxiliary tasks: a pooled
adversarial speaker head on a ramp, a per-frame speaker head with dynamic
weights) and for CTC (disjoint speech and speaker batches, cropped speaker
segments, a pooled speaker head with dynamic weights, the encoder frozen
for the first updates):

- 2 processes x minibatch B end with the model of 1 process x minibatch
  2B (state_dict by state_dict, within float tolerance), with the same
  history figures; the data sizes leave one rank without a batch in the
  last step of the speech and of the speaker batches (its zero-weight step);
- the exp dir holds the same files as the single process's (only rank 0
  writes);
- (CTC) a torchrun run resumed after epoch 1 ends with exactly the
  weights of the uninterrupted torchrun run.

And, without processes, the sharding itself: the ranks' minibatches of a
step are together the one-process minibatch, for chunks and for CTC's
length buckets (transcribed and speaker-only subsets, cropped segments).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="torch.distributed with the gloo backend is not available in this torch build")

UNITS = ["a", "b", "c", "d"]
# speakers x utterances per speaker: train, valid, speaker-only (CTC --extra-data)
SETS = {"train": (5, 3), "valid": (4, 1), "extra": (4, 2)}
SMALL = ["train.num_threads=1", "train.log_interval=1", "train.max_epochs=2", "train.lr_initial=0.01",
         "train.lr_final=0.005", "features.cmvn=none", "train.seed=3"]
CE_SETS = SMALL + [
    "model.num_layers=1", "model.cell_dim=8", "model.proj_dim=0", "chunk.chunk=8", "chunk.left=3", "chunk.delay=2",
    "tasks.adv.targets=utt_label", "tasks.adv.source={data}/utt2spk", "tasks.adv.loss=ce",
    "tasks.adv.pooling=mean", "tasks.adv.grl=true", "tasks.adv.schedule=ramp", "tasks.adv.weight=0.5",
    "tasks.frm.targets=utt_label", "tasks.frm.source={data}/utt2spk", "tasks.frm.loss=ce",
    "tasks.frm.schedule=dynamic"]
CTC_SETS = SMALL + [
    "model.criterion=ctc", "model.encoder=glu_conv", "model.num_layers=2", "model.cell_dim=8", "model.kernel=3",
    "model.ctc_norm=token", "train.batching=disjoint", "train.freeze_encoder_updates=2",
    "sequence.crop_untranscribed=12",
    "tasks.spk.targets=utt_label", "tasks.spk.source={data}/utt2spk", "tasks.spk.loss=aam",
    "tasks.spk.pooling=mean", "tasks.spk.schedule=dynamic"]
B = {"ce": 5, "ce_carry": 5, "ctc": 3}  # minibatch per process (chunks, utterances)


def _write_data(d: Path, utts: dict, spk: dict, text: dict = None) -> None:
    import kaldiio

    d.mkdir(parents=True)
    with kaldiio.WriteHelper(f"ark,scp:{d / 'feats.ark'},{d / 'feats.scp'}") as w:
        for u in sorted(utts):
            w(u, utts[u])
    (d / "utt2spk").write_text("".join(f"{u} {spk[u]}\n" for u in sorted(utts)))
    s2u = {}
    for u in sorted(utts):
        s2u.setdefault(spk[u], []).append(u)
    (d / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(s2u.items())))
    if text is not None:
        (d / "text").write_text("".join(f"{u} {text[u]}\n" for u in sorted(utts)))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Data dirs train, valid, extra (features: unit k's frames have
    dimension k high, silences between units; speakers shift dimension 0);
    ali (a 5-phone 1-state transition model and, as alignments of train and
    valid, pdf = unit or 0 for silence); lang (units a-d)."""
    import kaldi_hmm_gmm as khg

    from mtlasr import gmm, lang

    d = tmp_path_factory.mktemp("ddp")
    rng = np.random.default_rng(7)
    pdfs = {}
    for name, (n_spk, per_spk) in SETS.items():
        utts, spk, text = {}, {}, {}
        for s in range(n_spk):
            for k in range(per_spk):
                u = f"s{s}-{name}{k:02d}"
                units = rng.integers(1, 5, size=rng.integers(2, 6))
                frames, lab = [], []
                for unit in units:
                    n = int(rng.integers(3, 7))
                    f = np.zeros((n, 5), np.float32)
                    f[:, unit] = 3.0
                    frames += [f, np.zeros((2, 5), np.float32)]
                    lab += [int(unit)] * n + [0, 0]
                x = np.concatenate(frames) + rng.normal(0, 0.3, (len(lab), 5)).astype(np.float32)
                x[:, 0] += s
                utts[u], spk[u], text[u], pdfs[u] = x, f"s{s}", " ".join(UNITS[i - 1] for i in units), lab
        _write_data(d / name, utts, spk, None if name == "extra" else text)
    topo = khg.HmmTopology()
    topo.read(lang.topology_text([1, 2, 3, 4, 5], 1))
    tm, tree, am = gmm.init_mono(topo, [np.zeros((4, 5), np.float32)])
    tid_of_pdf = {}
    for tid, p in enumerate(tm.transition_id_to_pdf_array()):
        if tid > 0:
            tid_of_pdf.setdefault(int(p), tid)
    assert sorted(tid_of_pdf) == [0, 1, 2, 3, 4]
    (d / "ali").mkdir()
    gmm.save_model(d / "ali" / "final.mdl", tm, tree, am)
    gmm.write_ali(d / "ali" / "ali.1.gz", {u: [tid_of_pdf[p] for p in lab] for u, lab in pdfs.items()
                                           if "extra" not in u})
    (d / "lang").mkdir()
    (d / "lang" / "units.txt").write_text("".join(f"{u} {i}\n" for i, u in enumerate(["<blk>"] + UNITS)))
    (d / "lang" / "unit_type").write_text("phone\n")
    return d


def train(data: Path, crit: str, exp: Path, nproc: int, minibatch: int):
    """Train on the toy data with train_nnet: one process in this one
    (``nproc`` 1), else under torchrun; returns the torchrun run's
    CompletedProcess (None for one process).

    Raises: AssertionError showing the end of the log when training fails."""
    from mtlasr.bin import train_nnet

    sets = {"ce": CE_SETS, "ce_carry": CE_SETS + ["chunk.carry=true"], "ctc": CTC_SETS}[crit]
    ce = crit != "ctc"
    args = ["--device", "cpu", "--valid-data", str(data / "valid")]
    args += ["--valid-ali", str(data / "ali")] if ce else ["--extra-data", str(data / "extra")]
    for s in sets + [f"train.minibatch={minibatch}"]:
        args += ["--set", s]
    args += [str(data / "train"), str(data / ("ali" if ce else "lang")), str(exp)]
    if nproc == 1:
        assert train_nnet.main(args) == 0
        return None
    env = {**os.environ, "PYTHONPATH": str(ROOT / "steps" / "libs"), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                        "-m", "mtlasr.bin.train_nnet"] + args, capture_output=True, text=True, env=env, timeout=300)
    if p.returncode != 0:
        raise AssertionError(f"training failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-5000:]}")
    return p


def weights(path: Path) -> dict:
    return torch.load(path, weights_only=False)["model"]


def batches_per_epoch(log: str, crit: str, minibatch: int) -> list:
    """The minibatches of one epoch for one process, from train_nnet's log
    (speech and speaker-only batches for CTC's disjoint batching)."""
    import math
    import re

    if crit == "ce":
        return [math.ceil(int(re.search(r"train: \d+ utterances, \d+ frames, (\d+) chunks", log)[1]) / minibatch)]
    n, extra = map(int, re.search(r"train: (\d+) utterances \((\d+) untranscribed\)", log).groups())
    return [math.ceil((n - extra) / minibatch), math.ceil(extra / minibatch)]


def test_shards_of_a_step_make_the_global_minibatch():
    from mtlasr.nnet.data import ChunkDataset, ChunkSpec
    from mtlasr.nnet.seqdata import SeqBatch, SequenceDataset

    rng = np.random.default_rng(0)
    feats = {f"u{i:02d}": rng.normal(size=(int(t), 3)).astype(np.float32)
             for i, t in enumerate(rng.integers(5, 40, size=23))}
    labels = {u: rng.integers(0, 4, size=len(x)) for u, x in feats.items()}
    chunks = ChunkDataset(feats, labels, ChunkSpec(chunk=4, left=2, delay=1))
    seqs = SequenceDataset(feats, {u: np.array([1, 2]) for u in list(feats)[:15]}, lambda t: t,
                           untranscribed=list(feats)[15:])

    def rows(batch):
        """A minibatch as its rows: chunks (input, labels); CTC (utterance, its unpadded frames)."""
        if isinstance(batch, SeqBatch):
            return [(u, x[:n]) for u, x, n in zip(batch.utts, batch.x, batch.x_lens)]
        return list(zip(batch[0], batch[1]))

    def check(one, shards, n_batches, w):
        """one: the batches of one process with w times the minibatch; shards:
        per rank, its batches of a minibatch (None: none in that step)."""
        assert all(len(s) == len(one) == -(-n_batches // w) for s in shards)
        for k, glob in enumerate(one):
            parts = [rows(s[k]) for s in shards if s[k] is not None]
            mine = [r for p in parts for r in p]
            assert len(mine) == len(rows(glob))
            for (a, b), (c, d) in zip(mine, rows(glob)):
                assert (a == c if isinstance(a, str) else torch.equal(a, c)) and torch.equal(b, d)
        none = sum(b is None for s in shards for b in s)
        assert none == -n_batches % w
        return none

    empty = 0
    for w in (2, 3):
        empty += check(list(chunks.minibatches(5 * w, seed=5)),
                       [list(chunks.minibatches(5, seed=5, rank=r, world_size=w)) for r in range(w)],
                       -(-len(chunks) // 5), w)
        for kw in ({}, {"subset": "transcribed"}, {"subset": "untranscribed", "crop_frames": 9}):
            empty += check(list(seqs.minibatches(2 * w, seed=5, **kw)),
                           [list(seqs.minibatches(2, seed=5, rank=r, world_size=w, **kw)) for r in range(w)],
                           seqs.num_batches(2, **kw), w)
    assert empty > 0  # steps in which a rank had no batch were seen (chunks: 29 batches of 5)


@pytest.mark.parametrize("crit", ["ce", "ce_carry", "ctc"])
def test_two_processes_equal_one_with_the_global_batch(data, tmp_path, crit):
    one, two = tmp_path / "one", tmp_path / "two"
    train(data, crit, one, 1, 2 * B[crit])
    p2 = train(data, crit, two, 2, B[crit])
    if crit != "ce_carry":  # (ce_carry: each rank its 5 of the 10 streams of every step)
        # an odd number of batches: in the last step (speech, speaker) rank 1 has none
        n = batches_per_epoch(p2.stderr, crit, B[crit])
        assert all(k % 2 == 1 for k in n), n
        assert f"epoch 2 batch {(n[0] + 1) // 2}/{(n[0] + 1) // 2}:" in p2.stderr
    a, b = weights(one / "epoch-2.pt"), weights(two / "epoch-2.pt")
    assert sorted(a) == sorted(b)
    for k in a:  # (measured: differences of at most 1.5e-7; without the count weighting 1e-2)
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6, msg=lambda m: f"{crit} {k}: {m}")
    # the history's figures are those of all ranks: the single process's
    ha = json.loads((one / "history.json").read_text())
    hb = json.loads((two / "history.json").read_text())
    assert [r["epoch"] for r in hb] == [1, 2]
    # (and the valid loss of a task whose evaluate() weighting is exact; a pooled chunk head's valid
    # loss is its per-batch mean weighted by frames, which depends on the minibatch size)
    keys = ["train_loss", "train_frames", "valid_loss", "valid_acc",
            {"ce": "valid_frm_loss", "ce_carry": "valid_frm_loss", "ctc": "valid_spk_loss"}[crit]]
    for ra, rb in zip(ha, hb):
        for key in keys:
            assert rb[key] == pytest.approx(ra[key], rel=1e-5), key
    assert torch.load(two / "final.pt", weights_only=False)["epoch"] == \
        torch.load(one / "final.pt", weights_only=False)["epoch"]
    # only rank 0 writes: the same files as one process
    assert sorted(f.name for f in two.iterdir()) == sorted(f.name for f in one.iterdir())
    if crit == "ctc":
        # stopped after epoch 1 (its checkpoint), resumed under torchrun: the uninterrupted run's weights
        three = tmp_path / "three"
        three.mkdir()
        shutil.copyfile(two / "epoch-1.pt", three / "checkpoint.pt")
        p3 = train(data, crit, three, 2, B[crit])
        assert "resumed from" in p3.stderr and "epoch 1 batch" not in p3.stderr
        c = weights(three / "epoch-2.pt")
        for k in b:
            assert torch.equal(c[k], b[k]), k
        assert [r["epoch"] for r in json.loads((three / "history.json").read_text())] == [1, 2]


def test_training_threads_capped_at_the_job_cores(data, tmp_path, monkeypatch, caplog):
    """train.num_threads above the job's cores ($MTL_NUM_CORES, mtlasr.threads)
    is lowered, with a warning naming the key (a 2-thread training on a
    shared 2-core machine ran some 60 times slower)."""
    import logging

    from mtlasr.bin import train_nnet

    monkeypatch.setenv("MTL_NUM_CORES", "1")
    args = ["--device", "cpu"]
    for s in CE_SETS + ["train.max_epochs=1", "train.num_threads=2"]:  # the later --set wins
        args += ["--set", s]
    before = torch.get_num_threads()
    try:
        with caplog.at_level(logging.WARNING):
            assert train_nnet.main(args + [str(data / "train"), str(data / "ali"), str(tmp_path / "exp")]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert "train.num_threads 2 asks for more threads than the 1 core(s)" in caplog.text
