"""Reruns that never damage or silently reuse finished work; bad audio caught.

Every corrupted input is made here, in a copy: the shared sample is only
read. Step-level tests (audio checks, a failing MFCC rerun) use small data
dirs; recipe-level tests run egs/timit/s5 with its test settings on a copy
of the sample and change it (a corrected transcript, a removed speaker),
run two recipes at once, kill run.sh with SIGKILL and rerun, and check that
a plain rerun of a finished recipe changes no file.
"""

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import RECIPE, SAMPLE, sh  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
needs_sample = pytest.mark.skipif(not SAMPLE.is_dir(), reason=f"TIMIT sample not found at {SAMPLE}")
MFCC_CONF = RECIPE / "conf" / "mfcc.conf"
# Fast settings of the recipe (the shapes of every stage, seconds each).
FAST = "--nj 2 --nnet-config conf/lstm_tiny.yaml --lmwts '1 4 8' --num-gauss 16 --ivector-dim 8 --ivector-iters 3"


# ---------------------------------------------------------------- audio checks
def sphere_bytes(samples, rate=16000, count=None):
    """A NIST SPHERE file (1024-byte header, 16-bit PCM) whose header
    announces ``count`` samples (default: all of them)."""
    n = len(samples) if count is None else count
    head = (f"NIST_1A\n   1024\nsample_count -i {n}\nsample_rate -i {rate}\nchannel_count -i 1\n"
            "sample_n_bytes -i 2\nsample_byte_format -s2 01\nsample_coding -s3 pcm\nend_head\n").encode()
    return head + b" " * (1024 - len(head)) + np.asarray(samples, dtype="<i2").tobytes()


def test_truncated_sphere_is_an_error_naming_utterance_and_file(tmp_path):
    from mtlasr.audio import AudioError, read_audio

    x = (np.sin(np.arange(16000) / 10) * 3000).astype(np.int16)
    good, cut = tmp_path / "good.wav", tmp_path / "cut.wav"
    good.write_bytes(sphere_bytes(x))
    data, sr = read_audio(str(good), "u1")
    assert sr == 16000 and len(data) == 16000
    full = sphere_bytes(x)
    cut.write_bytes(full[: 1024 + int(0.4 * 16000) * 2])  # 40% of the announced samples
    with pytest.raises(AudioError, match=r"utterance u2: audio .*cut\.wav: truncated: its SPHERE header announces "
                                         r"16000 samples .* holds 12800 bytes after the header \(6400 samples\)"):
        read_audio(str(cut), "u2")


def test_truncated_riff_stereo_empty_and_channels(tmp_path):
    from mtlasr.audio import AudioError, read_audio

    x = (np.sin(np.arange(8000) / 7) * 2000).astype(np.int16)
    riff = tmp_path / "r.wav"
    sf.write(riff, x, 16000, subtype="PCM_16")
    blob = riff.read_bytes()
    (tmp_path / "rcut.wav").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(AudioError, match=r"utterance u: audio .*rcut\.wav: truncated: its RIFF data chunk"):
        read_audio(str(tmp_path / "rcut.wav"), "u")
    # a WAV streamed through a pipe (ffmpeg, sox): sizes 0xFFFFFFFF, "unknown", are not a truncation
    streamed = bytearray(blob)
    streamed[4:8] = streamed[40:44] = b"\xff\xff\xff\xff"
    assert streamed[36:40] == b"data"
    (tmp_path / "streamed.wav").write_bytes(bytes(streamed))
    y, sr = read_audio(f"cat {tmp_path / 'streamed.wav'} |", "p")
    assert sr == 16000 and np.array_equal(y, x.astype(np.float32))
    st = tmp_path / "stereo.wav"
    sf.write(st, np.stack([x, -x], axis=1), 16000, subtype="PCM_16")
    with pytest.raises(AudioError, match=r"utterance s: audio .*stereo\.wav has 2 channels; choose one with --channel"):
        read_audio(str(st), "s")
    left, _ = read_audio(str(st), "s", channel=0)
    right, _ = read_audio(str(st), "s", channel=1)
    assert np.array_equal(left, x.astype(np.float32)) and np.array_equal(right, -x.astype(np.float32))
    with pytest.raises(AudioError, match="--channel 2 does not exist"):
        read_audio(str(st), "s", channel=2)
    (tmp_path / "zero.wav").write_bytes(b"")
    with pytest.raises(AudioError, match=r"utterance z: cannot read audio .*zero\.wav"):
        read_audio(str(tmp_path / "zero.wav"), "z")


def test_failing_pipe_says_why(tmp_path):
    """A wav.scp command that fails: the error shows the command's own message."""
    from mtlasr.audio import AudioError, read_audio

    x = (np.sin(np.arange(1600) / 7) * 2000).astype(np.int16)
    sf.write(tmp_path / "ok.wav", x, 16000, subtype="PCM_16")
    got, _ = read_audio(f"cat {tmp_path / 'ok.wav'} |", "p")
    assert np.array_equal(got, x.astype(np.float32))
    with pytest.raises(AudioError, match=r"utterance p: audio .*the command failed \(exit 3\): header announces 7"):
        read_audio("echo 'header announces 7 samples' >&2; exit 3 |", "p")


def small_data_dir(d: Path, utts):
    """A data dir of (utt, wav path) pairs, speaker = the part before '-'."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "wav.scp").write_text("".join(f"{u} {w}\n" for u, w in sorted(utts)))
    (d / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u, _ in sorted(utts)))
    sh(f"utils/utt2spk_to_spk2utt.sh {d}/utt2spk > {d}/spk2utt")
    return d


@needs_sample
def test_failing_mfcc_rerun_leaves_finished_features_intact(tmp_path):
    """Features made, then one audio file becomes empty: the rerun (the
    audio changed) fails naming the utterance and file, and the finished
    feats.scp and every ark it points to are as they were."""
    import kaldiio

    wavs = []
    for i, f in enumerate(sorted((SAMPLE / "dr1-fvmh0").glob("*.wav"))[:4]):
        dst = tmp_path / "audio" / f.name
        dst.parent.mkdir(exist_ok=True)
        shutil.copy(f, dst)
        wavs.append((f"spk{i % 2}-{f.stem}", dst))
    d = small_data_dir(tmp_path / "data", wavs)
    mf = f"steps/make_mfcc.sh --nj 2 --mfcc-config {MFCC_CONF} {d} {tmp_path}/log {tmp_path}/mfcc"
    sh(mf)
    before = {p: p.read_bytes() for p in sorted((tmp_path / "mfcc").iterdir())}
    feats_before = (d / "feats.scp").read_text()
    p = sh(mf)
    assert "up to date; skipping" in p.stderr
    wavs[2][1].write_bytes(b"")
    p = sh(mf, check=False)
    assert p.returncode != 0
    assert wavs[2][0] in p.stderr and str(wavs[2][1]) in p.stderr, p.stderr  # the log's error line, on the terminal
    assert (d / "feats.scp").read_text() == feats_before
    for path, content in before.items():
        assert path.read_bytes() == content, path
    for utt, m in kaldiio.load_scp(str(d / "feats.scp")).items():
        assert m.shape[1] == 13
    # a stereo file needs --channel; with it, the features are made
    x, sr = sf.read(str(wavs[0][1]), dtype="int16")
    sf.write(wavs[2][1], np.stack([x, x], axis=1), sr, subtype="PCM_16", format="WAV")
    p = sh(mf, check=False)
    assert p.returncode != 0 and "has 2 channels; choose one with --channel" in p.stderr
    sh(mf.replace("--nj 2", "--nj 2 --channel 0"))
    assert len((d / "feats.scp").read_text().splitlines()) == 4
    left = [f for f in (tmp_path / "mfcc").iterdir() if f.suffix == ".ark"]
    assert len(left) == 2, left  # the old arks went once the new feats.scp was in place


@needs_sample
def test_truncated_feature_ark_is_named_before_training(tmp_path):
    """A truncated ark gives an error naming the utterance and its entry,
    not kaldiio's 'buffer size must be a multiple of element size'."""
    from mtlasr.features import load_features

    f = sorted((SAMPLE / "dr1-fvmh0").glob("*.wav"))[0]
    d = small_data_dir(tmp_path / "data", [("s-a", f)])
    sh(f"steps/make_mfcc.sh --nj 1 --mfcc-config {MFCC_CONF} {d} {tmp_path}/log {tmp_path}/mfcc")
    sh(f"steps/compute_cmvn_stats.sh {d} {tmp_path}/log {tmp_path}/mfcc")
    ark = next(p for p in (tmp_path / "mfcc").iterdir() if p.name.startswith("raw_mfcc") and p.suffix == ".ark")
    ark.write_bytes(ark.read_bytes()[:-7])
    with pytest.raises(ValueError, match=r"utterance s-a: cannot read its features .*feats\.scp: .*raw_mfcc"):
        load_features(d)


# ---------------------------------------------------------------- recipe level
def make_recipe(d: Path) -> Path:
    """A copy of egs/timit/s5 made of links, for a run in ``d``."""
    d.mkdir(parents=True, exist_ok=True)
    for p in RECIPE.iterdir():
        if p.name not in ("data", "exp", "mfcc", "db"):
            (d / p.name).symlink_to(p)
    return d


def copy_sample(dst: Path) -> Path:
    shutil.copytree(SAMPLE, dst, symlinks=False)
    return dst


def snapshot(root: Path):
    """path -> (size, mtime_ns) of every file under data/, exp/ and mfcc/."""
    out = {}
    for top in ("data", "exp", "mfcc"):
        for p in sorted((root / top).rglob("*")):
            if p.is_file() and not p.name.startswith(".lock"):
                st = p.stat()
                out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def copied(tmp_path_factory):
    """The recipe to stage 3 (mono, its decoding) and scored, on a copy of the sample."""
    if not SAMPLE.is_dir():
        pytest.skip("TIMIT sample not found")
    base = tmp_path_factory.mktemp("reruns")
    corpus = copy_sample(base / "corpus")
    r = make_recipe(base / "recipe")
    sh(f"./run.sh --timit {corpus} {FAST} --stop-stage 3", r)
    sh(f"./run.sh --timit {corpus} {FAST} --stage 7", r)
    return r, corpus


def per_of(path: Path) -> str:
    return path.read_text().split()[1]


def test_plain_rerun_redoes_nothing_and_changes_no_file(copied):
    r, corpus = copied
    before = snapshot(r)
    t0 = time.time()
    p = sh(f"./run.sh --timit {corpus} {FAST} --stop-stage 3", r)
    took = time.time() - t0
    assert snapshot(r) == before
    for what in ("up to date with", "MFCCs are up to date", "already trained from these inputs",
                 "alignments are up to date", "HCLG.fst is up to date", "already decoded with these inputs"):
        assert what in p.stderr, what
    print(f"plain rerun of stages 0-3: {took:.1f} s")


def test_corrected_transcript_redoes_what_depends_on_it(copied, tmp_path):
    """One phone of one training transcript changes: data prep, the LM,
    the monophone system and its decoding are redone (other results), the
    features are not."""
    r, corpus = copied
    phn = corpus / "dr1-fvmh0" / "si1466.phn"
    keep = phn.read_text()
    feats = (r / "data/train/feats.scp").stat().st_mtime_ns
    mdl = (r / "exp/mono/final.mdl").read_bytes()
    try:
        lines = keep.splitlines()
        cols = lines[5].split()
        cols[2] = "aa" if cols[2] != "aa" else "iy"
        phn.write_text("\n".join(lines[:5] + [" ".join(cols)] + lines[6:]) + "\n")
        p = sh(f"./run.sh --timit {corpus} {FAST} --stop-stage 3", r)
        assert "data: prep is out of date (tree" in p.stderr
        assert "made from other" not in p.stderr
        assert "exp/mono: train is out of date (input data/train/text changed)" in p.stderr
        assert (r / "data/train/feats.scp").stat().st_mtime_ns == feats      # MFCCs not redone
        assert (r / "exp/mono/final.mdl").read_bytes() != mdl                 # another model
        assert "MFCCs are up to date" in p.stderr
    finally:
        phn.write_text(keep)
    p = sh(f"./run.sh --timit {corpus} {FAST} --stop-stage 3", r)             # back: the first model again
    assert (r / "exp/mono/final.mdl").read_bytes() == mdl


def test_removed_speaker_then_rerun(copied):
    """A training speaker leaves the corpus: the data dir is written afresh
    (no stale utt2num_frames), its features are recomputed, the run goes
    through."""
    r, corpus = copied
    spk_dir = corpus / "dr6-mbma1"
    moved = corpus.parent / "mbma1.removed"
    spk_dir.rename(moved)
    try:
        p = sh(f"./run.sh --timit {corpus} {FAST} --stop-stage 3", r)
        utts = (r / "data/train/utt2spk").read_text()
        assert "mbma1" not in utts and "mbma1" not in (r / "data/train/utt2num_frames").read_text()
        assert "mbma1" not in (r / "data/train/feats.scp").read_text()
        assert len(utts.splitlines()) == 88
        assert "exp/mono: train is out of date" in p.stderr
    finally:
        moved.rename(spk_dir)
    sh(f"./run.sh --timit {corpus} {FAST} --stop-stage 3", r)
    assert len((r / "data/train/utt2spk").read_text().splitlines()) == 96


def test_bad_stage_options_exit_with_an_error(copied):
    r, corpus = copied
    for bad, msg in (("--stage 99", "--stage must be a stage number, 0 to 7"),
                     ("--stage five", "--stage must be a stage number, 0 to 7"),
                     ("--stop-stage x", "--stop-stage must be a stage number"),
                     ("--stage 5 --stop-stage 3", "nothing to do")):
        p = sh(f"./run.sh --timit {corpus} {bad}", r, check=False)
        assert p.returncode != 0 and msg in p.stderr, (bad, p.stderr)
        assert "command not found" not in p.stderr and "integer expression" not in p.stderr


def test_typo_in_an_override_with_stage_5_removes_nothing(copied):
    r, corpus = copied
    before = snapshot(r)
    p = sh(f"./run.sh --timit {corpus} {FAST} --stage 5 --nnet-opts 'train.max_epoch=3'", r, check=False)
    assert p.returncode != 0
    assert "unknown key 'max_epoch'" in p.stderr, p.stderr[-2000:]
    after = snapshot(r)
    assert {k: v for k, v in after.items() if not k.startswith("exp/log/")} == \
        {k: v for k, v in before.items() if not k.startswith("exp/log/")}


def test_second_concurrent_run_is_refused(copied):
    r, corpus = copied
    lock_info = r / "exp" / ".lock.info"
    first = subprocess.Popen(["bash", "-c", f". ./path.sh && exec ./run.sh --timit {corpus} {FAST} --stage 3 --stop-stage 3"],
                             cwd=r, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (lock_info.is_file() and
                                              lock_info.read_text().startswith(f"{first.pid} ")):
            time.sleep(0.1)
        p = sh(f"./run.sh --timit {corpus} {FAST} --stop-stage 3", r, check=False)
        assert p.returncode != 0
        assert re.search(rf"exp is in use by another run: PID {first.pid} \(since .*run\.sh", p.stderr), p.stderr
    finally:
        first.wait(timeout=300)
    assert first.returncode == 0, first.stderr.read()[-2000:]


@pytest.fixture(scope="module")
def killed_and_rerun(tmp_path_factory):
    """The whole recipe with its test settings and the i-vector task, run
    once without interruption, and once killed (SIGKILL to run.sh alone)
    during the LSTM training, then rerun."""
    if not SAMPLE.is_dir():
        pytest.skip("TIMIT sample not found")
    base = tmp_path_factory.mktemp("killed")
    opts = f"--timit {SAMPLE} {FAST} --nnet-tag lstm_tiny --aux-task ivector --aux-lambda 0.01 " \
           "--nnet-opts train.max_epochs=4"
    whole = make_recipe(base / "whole")
    sh(f"./run.sh {opts}", whole)
    killed = make_recipe(base / "killed")
    p = subprocess.Popen(["bash", "-c", f". ./path.sh && exec ./run.sh {opts}"], cwd=killed,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    epoch = killed / "exp/lstm_tiny/.next/epoch-1.pt"
    deadline = time.time() + 600
    while time.time() < deadline and not epoch.exists() and p.poll() is None:
        time.sleep(0.05)
    assert p.poll() is None, "run.sh ended before the LSTM training could be interrupted"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    rerun = sh(f"./run.sh {opts}", killed)
    return whole, killed, rerun


def test_plain_rerun_of_the_whole_recipe_changes_no_file(killed_and_rerun):
    """All stages, scoring and the results table included."""
    whole = killed_and_rerun[0]
    opts = f"--timit {SAMPLE} {FAST} --nnet-tag lstm_tiny --aux-task ivector --aux-lambda 0.01 " \
           "--nnet-opts train.max_epochs=4"
    before = snapshot(whole)
    t0 = time.time()
    p = sh(f"./run.sh {opts}", whole)
    print(f"plain rerun of the whole recipe: {time.time() - t0:.1f} s")
    assert snapshot(whole) == before
    assert "up to date" in p.stderr and "| lstm_tiny |" in p.stdout


def test_kill9_then_rerun_gives_the_uninterrupted_results(killed_and_rerun):
    import torch

    whole, killed, rerun = killed_and_rerun
    # the killed run.sh's jobs were still training: the rerun stopped them before starting
    assert re.search(r"exp: the run that held it \(PID \d+\) is gone, but jobs it started still run "
                     r"\(PIDs [\d ]+\); stopping them", rerun.stderr), rerun.stderr[-3000:]
    assert "resuming" in rerun.stderr or "resumed from" in (killed / "exp/lstm_tiny/log/train.log").read_text()
    for f in ("exp/mono/final.mdl", "exp/mono_ali/ali.1.gz", "exp/mono_ali/ali.2.gz",
              "exp/ivector/extractor/final.ie", "exp/ivectors_train/ivectors.scp"):
        a, b = (whole / f), (killed / f)
        if f.endswith(".scp"):  # absolute paths inside: compare the vectors
            import kaldiio
            va, vb = kaldiio.load_scp(str(a)), kaldiio.load_scp(str(b))
            assert va.keys() == vb.keys() and all(np.array_equal(va[k], vb[k]) for k in va)
        else:
            assert a.read_bytes() == b.read_bytes(), f
    ma = torch.load(whole / "exp/lstm_tiny/final.pt", weights_only=False)["model"]
    mb = torch.load(killed / "exp/lstm_tiny/final.pt", weights_only=False)["model"]
    assert all(torch.equal(ma[k], mb[k]) for k in ma)
    for s in ("dev", "test"):
        assert per_of(whole / f"exp/lstm_tiny/decode_{s}/per") == per_of(killed / f"exp/lstm_tiny/decode_{s}/per")
    assert not (killed / "exp/lstm_tiny/.next").exists()
