"""End to end: the TIMIT recipe (egs/timit/s5) on the sample with a tiny
UBM / i-vector extractor and a tiny LSTM trained with the i-vector
regression task, plus resume checks and task-declaration errors, and the
top-level ./run.sh as its entry.

The recipe runs in a scratch directory that links the recipe's files
(run.sh, path.sh, cmd.sh, conf/, local/, steps/, utils/), so the
repository tree stays clean. One run is shared by the tests of this module
(about a minute on 2 cores).
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
from conftest import RECIPE, SAMPLE, sh  # noqa: E402
pytestmark = pytest.mark.skipif(not SAMPLE.is_dir(), reason=f"TIMIT sample not found at {SAMPLE} (set TIMIT_SAMPLE)")



def link_recipe(d: Path) -> None:
    """Make ``d`` a copy of egs/timit/s5 made of links (no outputs)."""
    d.mkdir(parents=True, exist_ok=True)
    for p in RECIPE.iterdir():
        if p.name not in ("data", "exp", "mfcc", "db"):
            (d / p.name).symlink_to(p)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    d = tmp_path_factory.mktemp("recipe")
    link_recipe(d)
    sh(f"./run.sh {RUN_OPTS}", d)
    return d


RUN_OPTS = (f"--timit {SAMPLE} --nj 2 --nnet-config conf/lstm_tiny.yaml --nnet-tag lstm_tiny --lmwts '1 4 8' "
            "--num-gauss 16 --ivector-dim 8 --ivector-iters 3 --aux-task ivector --aux-lambda 0.01")


def per_of(path):
    return float(path.read_text().split()[1])


def test_run_produces_per_for_mono_and_lstm(recipe):
    for sys_name in ("mono", "lstm_tiny"):
        for s in ("dev", "test"):
            per = recipe / "exp" / sys_name / f"decode_{s}" / "per"
            assert per.is_file(), per
            assert 0.0 <= per_of(per) <= 100.0
        # test uses the LM weight chosen on dev
        dev = recipe / "exp" / sys_name / "decode_dev"
        test = recipe / "exp" / sys_name / "decode_test"
        assert (dev / "lmwt").read_text() == (test / "lmwt").read_text()
        assert (dev / "per_spk").read_text().count("\n") >= 3  # header, 2 speakers, SUM
    # A monophone GMM on 12 speakers is far better than chance on the others.
    assert per_of(recipe / "exp/mono/decode_test/per") < 60.0
    results = (recipe / "exp/results.md").read_text()
    assert "| mono |" in results and "| lstm_tiny |" in results
    assert (recipe / "exp/lstm_tiny/train_curve.png").stat().st_size > 1000


def test_ivectors_for_every_set_and_speaker(recipe):
    import kaldiio
    import numpy as np

    from mtlasr.datadir import read_table

    for s in ("train", "dev", "test"):
        utts = read_table(recipe / f"data/{s}/utt2spk")
        iv = read_table(recipe / f"exp/ivectors_{s}/ivectors.scp")
        assert set(iv) == set(utts), s
        v = kaldiio.load_mat(next(iter(iv.values())))
        assert v.shape == (8,) and np.all(np.isfinite(v))
        spk = read_table(recipe / f"exp/ivectors_{s}/spk_ivectors.scp")
        assert set(spk) == set(utts.values())
        online = read_table(recipe / f"exp/ivectors_{s}/ivector_online.scp")
        frames = read_table(recipe / f"data/{s}/utt2num_frames")
        u = next(iter(online))
        assert kaldiio.load_mat(online[u]).shape == (-(-int(frames[u]) // 10), 8)
    objf = [float(l.split()[1]) for l in (recipe / "exp/ivector/extractor/objf").read_text().splitlines()]
    assert len(objf) == 3 and objf[-1] > objf[0]
    assert "EER" in (recipe / "exp/ivectors_eer/eer").read_text()


def test_mtl_system_trained_with_the_ivector_task(recipe):
    hist = json.loads((recipe / "exp/lstm_tiny/history.json").read_text())
    assert "train_ivector_loss" in hist[0] and "valid_ivector_loss" in hist[0]
    cfg = (recipe / "exp/lstm_tiny/config.yaml").read_text()
    assert "ivectors_{set}/ivectors.scp" in cfg and "weight: 0.01" in cfg


@pytest.mark.parametrize("override,msg", [
    ("tasks.iv.source=exp/nothing_{set}.scp", "target file exp/nothing_train.scp"),
    ("tasks.iv.fork=7", "layer 7 does not exist"),
])
def test_bad_task_fails_before_training(recipe, tmp_path, override, msg):
    p = sh("python3 -m mtlasr.bin.train_nnet --config conf/lstm_tiny.yaml --set tasks.iv.targets=utt_vector "
           f"--set 'tasks.iv.source=exp/ivectors_{{set}}/ivectors.scp' --set '{override}' "
           f"data/train exp/mono_ali {tmp_path}/x", recipe, check=False)
    assert p.returncode != 0
    assert msg in p.stderr, p.stderr[-2000:]
    assert not (tmp_path / "x/epoch-1.pt").exists()


def test_alignments_cover_training_data(recipe):
    from mtlasr import gmm

    ali = gmm.read_ali_dir(recipe / "exp/mono_ali")
    frames = dict(l.split() for l in (recipe / "data/train/utt2num_frames").read_text().splitlines())
    assert set(ali) == set(frames)
    for utt, a in ali.items():
        assert len(a) == int(frames[utt])


def test_rerun_skips_finished_stages(recipe):
    before = (recipe / "exp/lstm_tiny/final.pt").stat().st_mtime_ns
    p = sh(f"./run.sh {RUN_OPTS} --stop-stage 6", recipe)
    assert "already trained from these inputs and options; skipping" in p.stderr
    assert "already decoded with these inputs and options; skipping" in p.stderr
    assert (recipe / "exp/lstm_tiny/final.pt").stat().st_mtime_ns == before


def test_training_resume_is_exact(recipe, tmp_path):
    """Two epochs in one go equal one epoch, then a rerun that resumes."""
    base = ("python3 -m mtlasr.bin.train_nnet --config conf/lstm_tiny.yaml --device cpu "
            "--valid-data data/dev --valid-ali exp/mono_ali_dev data/train exp/mono_ali")
    sh(f"{base} {tmp_path}/a", recipe)
    sh(f"{base} --set train.max_epochs=1 {tmp_path}/c", recipe)
    p = sh(f"{base} {tmp_path}/c", recipe)
    assert "resumed from" in p.stderr
    a = torch.load(tmp_path / "a/final.pt", weights_only=False)
    c = torch.load(tmp_path / "c/final.pt", weights_only=False)
    assert [r["epoch"] for r in c["history"]] == [1, 2]
    for k in a["model"]:
        assert torch.equal(a["model"][k], c["model"][k]), k


def test_killed_training_resumes(recipe, tmp_path):
    """SIGKILL during epoch 2 loses only that epoch; the rerun completes it."""
    import signal
    import time

    out = tmp_path / "k"
    cmd = ("python3 -m mtlasr.bin.train_nnet --config conf/lstm_tiny.yaml --device cpu "
           f"--set train.max_epochs=3 data/train exp/mono_ali {out}")
    p = subprocess.Popen(["bash", "-c", f". ./path.sh && exec {cmd}"], cwd=recipe,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (out / "epoch-1.pt").exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    if p.poll() is None:
        os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert (out / "epoch-1.pt").exists()
    sh(cmd, recipe)
    hist = json.loads((out / "history.json").read_text())
    assert [r["epoch"] for r in hist] == [1, 2, 3]
    assert (out / "final.pt").is_file()


def test_bad_config_key_fails_before_training(recipe, tmp_path):
    p = sh("python3 -m mtlasr.bin.train_nnet --config conf/lstm_tiny.yaml --set train.max_epoch=3 "
           f"data/train exp/mono_ali {tmp_path}/x", recipe, check=False)
    assert p.returncode != 0
    assert "max_epoch" in p.stderr
    assert not (tmp_path / "x/epoch-1.pt").exists()


def test_linguistic_and_adversarial_tasks_train_staged(recipe, tmp_path):
    """Broad phone classes (frame labels) and an adversarial speaker branch
    train together, staged as in seed 002, from their shipped configs."""
    p = sh("python3 -m mtlasr.bin.train_nnet --config conf/lstm_tiny.yaml --config conf/tasks/broad_class.yaml "
           "--config conf/tasks/speaker_adv.yaml --set train.max_epochs=3 "
           "--set 'train.stages=[[main, 1], [aux, 1], [joint, 1]]' --set tasks.speaker_adv.hidden=[8] "
           "--valid-data data/dev --valid-ali exp/mono_ali_dev "
           f"data/train exp/mono_ali {tmp_path}/m", recipe)
    hist = json.loads((tmp_path / "m/history.json").read_text())
    assert [r["stage"] for r in hist] == ["main", "aux", "joint"]
    assert "valid_broad_class_loss" in hist[0] and "train_speaker_adv_loss" in hist[0]
    assert "valid_speaker_adv_loss" not in hist[0]  # dev speakers are not training speakers
    assert "16 of 16 utterances have labels unseen in training" in p.stderr


def test_top_level_run_sh_is_the_recipe(recipe, tmp_path):
    """./run.sh at the top runs egs/timit/s5/run.sh in its directory, with
    the same options (a relative --timit is taken from where it is called):
    the same monophone model and decoded hypotheses, byte for byte."""
    top = tmp_path / "top"
    link_recipe(top / "egs/timit/s5")
    shutil.copy(ROOT / "run.sh", top / "run.sh")
    (top / "path.sh").symlink_to(ROOT / "path.sh")
    opts = RUN_OPTS.replace(f"--timit {SAMPLE}", f"--timit {os.path.relpath(SAMPLE, top)}")
    p = sh(f"./run.sh {opts} --stop-stage 3", top)
    assert "running egs/timit/s5/run.sh" in p.stderr
    out = top / "egs/timit/s5/exp/mono"
    assert (out / "final.mdl").read_bytes() == (recipe / "exp/mono/final.mdl").read_bytes()
    for s in ("dev", "test"):  # the same hypotheses at every LM weight
        mine = sorted((out / f"decode_{s}/scoring").glob("*/hyp.*.tra"))
        assert mine and [p.relative_to(out) for p in mine] == \
            [p.relative_to(recipe / "exp/mono") for p in sorted((recipe / f"exp/mono/decode_{s}/scoring").glob("*/hyp.*.tra"))]
        for p in mine:
            assert p.read_bytes() == (recipe / "exp/mono" / p.relative_to(out)).read_bytes(), p
    assert not (top / "exp").exists() and not (top / "data").exists()


def test_recipes_are_listed_under_egs():
    assert (ROOT / "egs/timit/s5/run.sh").is_file()
    for name in ("steps", "utils"):
        link = RECIPE / name
        assert link.is_symlink() and link.resolve() == (ROOT / name).resolve()


def test_aux_lambda_for_an_undeclared_task_names_it(recipe, tmp_path):
    """--aux-lambda sets tasks.<file name>.weight; a file declaring another
    task is reported by the trainer (not guessed by the shell), with the
    trainer's own error line on the terminal."""
    other = tmp_path / "other.yaml"
    other.write_text((RECIPE / "conf/tasks/ivector.yaml").read_text())
    p = sh(f"./run.sh {RUN_OPTS} --stage 5 --stop-stage 5 --aux-task {other} --aux-lambda 0.5 --nnet-tag bad",
           recipe, check=False)
    assert p.returncode != 0
    assert "no task 'other' is declared" in p.stderr and "(declared: ivector)" in p.stderr, p.stderr[-2000:]
    assert not (recipe / "exp/bad/epoch-1.pt").exists()


def test_carry_comparison_table(recipe):
    """local/run_carry.sh: chunks and state carry-over trained, decoded and
    scored per seed; the table has both rows with PER and labels/s, the
    carry-over row with its ratio to the chunks'."""
    sh("local/run_carry.sh --seeds 0 --threads 1 --nnet-config conf/lstm_tiny.yaml --lmwts 4 "
       "--nnet-opts train.max_epochs=1", recipe)
    table = (recipe / "exp/carry/carry.md").read_text().splitlines()
    rows = {line.split("|")[1].strip(): line for line in table if line.startswith("| ") and "seeds" not in line}
    assert set(rows) == {"chunks, left context (seed 000)", "state carry-over (chunk.carry)"}
    carry = rows["state carry-over (chunk.carry)"].split("|")
    assert carry[2].strip() == "1" and float(carry[3]) > 0 and "(x" in carry[9]
    for name in ("lstm_chunk_s0", "lstm_carry_s0"):
        assert (recipe / f"exp/{name}/decode_test/per").is_file()
    hist = json.loads((recipe / "exp/lstm_carry_s0/history.json").read_text())
    assert len(hist) == 1 and hist[0]["train_frames"] > 0
    import yaml

    for name, carry in (("lstm_chunk_s0", False), ("lstm_carry_s0", True)):
        assert yaml.safe_load((recipe / f"exp/{name}/config.yaml").read_text())["chunk"]["carry"] is carry
