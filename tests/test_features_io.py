"""Feature extraction and Kaldi table I/O.

steps/make_mfcc.sh and steps/compute_cmvn_stats.sh are run (with path.sh's
environment) on the test set of the TIMIT sample; what they write is read
back with the independent ``kaldi_io`` reader and with ``kaldiio``, and
compared with a direct recomputation. Alignments written by mtlasr.gmm are
read back by kaldi_io too. Unit tests of add_deltas, apply_cmvn,
read_kaldi_conf and the feature reader at the end.
"""

import hashlib
import importlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mtlasr import audio, features
from mtlasr.gmm import read_ali, write_ali

REPO = Path(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from conftest import RECIPE, SAMPLE  # noqa: E402
MFCC_CONF = RECIPE / "conf" / "mfcc.conf"
needs_sample = pytest.mark.skipif(not SAMPLE.is_dir(), reason=f"TIMIT sample not found at {SAMPLE}")


def sh(cmd, check=True):
    proc = subprocess.run(["bash", "-c", f". ./path.sh && {cmd}"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
    return proc


def table(path):
    return dict(line.split(" ", 1) for line in Path(path).read_text().splitlines())


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def kaldi_io(tmp_path_factory):
    """The kaldi_io package, imported with KALDI_ROOT set to an existing dir
    (silences its warning); the PATH and KALDI_ROOT it sets are restored."""
    saved = {k: os.environ.get(k) for k in ("KALDI_ROOT", "PATH")}
    os.environ["KALDI_ROOT"] = str(tmp_path_factory.mktemp("kaldi_root"))
    try:
        mod = importlib.import_module("kaldi_io")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return mod


@pytest.fixture(scope="module")
def sample_data(tmp_path_factory):
    """Data dirs made by the TIMIT recipe's local/timit_data_prep.py from the sample."""
    if not SAMPLE.is_dir():
        pytest.skip(f"TIMIT sample not found at {SAMPLE}")
    out = tmp_path_factory.mktemp("prep") / "data"
    sh(f"python3 '{RECIPE}/local/timit_data_prep.py' '{SAMPLE}' '{out}'")
    return out


@pytest.fixture(scope="module")
def feats_dir(sample_data, tmp_path_factory):
    """The sample's test set with MFCCs (2 jobs) and CMVN stats."""
    base = tmp_path_factory.mktemp("feats")
    data = base / "data" / "test"
    shutil.copytree(sample_data / "test", data)
    sh(f"steps/make_mfcc.sh --nj 2 --mfcc-config '{MFCC_CONF}' '{data}' '{base}/log' '{base}/mfcc'")
    sh(f"steps/compute_cmvn_stats.sh '{data}' '{base}/log' '{base}/mfcc'")
    return data


@needs_sample
def test_outputs_exist(feats_dir):
    utts = list(table(feats_dir / "utt2spk"))
    assert len(utts) == 16
    for f in ("feats.scp", "cmvn.scp", "utt2num_frames"):
        assert (feats_dir / f).is_file(), f
    assert list(table(feats_dir / "feats.scp")) == utts
    assert list(table(feats_dir / "utt2num_frames")) == utts
    assert list(table(feats_dir / "cmvn.scp")) == list(table(feats_dir / "spk2utt"))
    assert (feats_dir / ".mfcc.record").exists() and (feats_dir / ".cmvn.record").exists()


@needs_sample
def test_feats_read_back_by_kaldi_io(feats_dir, kaldi_io):
    import kaldiio

    ours = kaldiio.load_scp(str(feats_dir / "feats.scp"))
    theirs = dict(kaldi_io.read_mat_scp(str(feats_dir / "feats.scp")))
    assert sorted(theirs) == sorted(ours.keys()) and len(theirs) == 16
    nframes = {u: int(n) for u, n in table(feats_dir / "utt2num_frames").items()}
    for utt, m in theirs.items():
        a = np.asarray(ours[utt])
        assert m.dtype == np.float32 and a.dtype == np.float32
        assert m.shape == (nframes[utt], 13)
        assert np.array_equal(m, a), utt  # the ark roundtrip is exact

    # Direct recomputation of one utterance from its audio.
    utt = "mbcg0_si486"
    spec = table(feats_dir / "wav.scp")[utt]
    samples, sr = audio.read_audio(spec, utt)
    direct = features.compute_mfcc(samples, sr, features.mfcc_options(MFCC_CONF))
    assert direct.shape == theirs[utt].shape
    assert np.allclose(direct, theirs[utt], rtol=1e-5, atol=1e-4)


@needs_sample
def test_cmvn_stats_read_back_by_kaldi_io(feats_dir, kaldi_io):
    import kaldiio

    ours = kaldiio.load_scp(str(feats_dir / "cmvn.scp"))
    theirs = dict(kaldi_io.read_mat_scp(str(feats_dir / "cmvn.scp")))
    assert sorted(theirs) == ["fbcg1", "mbcg0"]
    feats = dict(kaldi_io.read_mat_scp(str(feats_dir / "feats.scp")))
    nframes = {u: int(n) for u, n in table(feats_dir / "utt2num_frames").items()}
    spk2utt = {s: u.split() for s, u in table(feats_dir / "spk2utt").items()}
    for spk, st in theirs.items():
        assert st.shape == (2, 14)
        assert np.array_equal(st, np.asarray(ours[spk]))
        assert st[0, -1] == sum(nframes[u] for u in spk2utt[spk])
        assert st[1, -1] == 0
        cat = np.concatenate([feats[u] for u in spk2utt[spk]]).astype(np.float64)
        assert np.allclose(st[0, :-1], cat.sum(0), rtol=1e-9)
        assert np.allclose(st[1, :-1], (cat ** 2).sum(0), rtol=1e-9)


def test_alignments_read_back_by_kaldi_io(tmp_path, kaldi_io):
    rng = np.random.default_rng(0)
    ali = {
        "spk1_utt2": rng.integers(1, 200, size=57),
        "spk1_utt10": np.array([1], dtype=np.int64),
        "spk0_utt1": np.array([3, 3, 3, 4, 4, 2**31 - 1], dtype=np.int32),
    }
    path = tmp_path / "ali.1.gz"
    write_ali(path, ali)
    with open(path, "rb") as f:
        assert f.read(2) == b"\x1f\x8b"  # gzip
    theirs = list(kaldi_io.read_vec_int_ark(str(path)))
    ours = read_ali(path)
    assert [k for k, _ in theirs] == sorted(ali)  # written sorted by utterance
    assert list(ours) == sorted(ali)
    for key, vec in theirs:
        assert vec.dtype == np.int32 and ours[key].dtype == np.int32
        assert np.array_equal(vec, ours[key])
        assert np.array_equal(vec, np.asarray(ali[key]))


@needs_sample
def test_missing_audio_is_named_before_any_job(sample_data, tmp_path):
    """A wav.scp naming a missing file: the step stops before any job, naming
    the utterance and the file; another data dir sharing the mfcc dir is
    untouched; after the fix the features are made."""
    base = tmp_path
    mfcc, log = base / "mfcc", base / "log"
    good = base / "data" / "test"
    shutil.copytree(sample_data / "test", good)
    sh(f"steps/make_mfcc.sh --nj 2 --mfcc-config '{MFCC_CONF}' '{good}' '{log}/test' '{mfcc}'")
    good_files = {p: digest(p) for p in [good / "feats.scp", good / "utt2num_frames", *mfcc.glob("*test*")]}

    bad = base / "data" / "other"
    shutil.copytree(sample_data / "test", bad)
    wav = table(bad / "wav.scp")
    utt = "mbcg0_si957"
    real = wav[utt]
    missing = base / "audio" / "gone.wav"
    wav[utt] = str(missing)
    (bad / "wav.scp").write_text("".join(f"{u} {p}\n" for u, p in wav.items()))
    proc = sh(f"steps/make_mfcc.sh --nj 2 --mfcc-config '{MFCC_CONF}' '{bad}' '{log}/other' '{mfcc}'", check=False)
    assert proc.returncode != 0
    assert f"utterance {utt}: audio file {missing} does not exist" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (bad / "feats.scp").exists() and not (bad / ".mfcc.record").exists()
    assert not list(mfcc.glob("raw_mfcc_other.*"))
    assert {p: digest(p) for p in good_files} == good_files

    missing.parent.mkdir()
    shutil.copyfile(real, missing)
    sh(f"steps/make_mfcc.sh --nj 2 --mfcc-config '{MFCC_CONF}' '{bad}' '{log}/other' '{mfcc}'")
    assert (bad / ".mfcc.record").exists()
    assert list(table(bad / "feats.scp")) == list(table(bad / "utt2spk"))
    assert table(bad / "utt2num_frames") == table(good / "utt2num_frames")
    import kaldiio
    a, b = kaldiio.load_scp(str(bad / "feats.scp")), kaldiio.load_scp(str(good / "feats.scp"))
    for u in table(good / "utt2spk"):
        assert np.array_equal(a[u], b[u]), u
    assert {p: digest(p) for p in good_files} == good_files


@needs_sample
def test_interrupted_mfcc_resumes_the_unfinished_jobs(sample_data, tmp_path):
    """A run killed after job 1 finished (its scp is the last file a job
    writes) and before job 2 did: the rerun, with unchanged inputs, redoes
    job 2 only."""
    mfcc, d = tmp_path / "mfcc", tmp_path / "data" / "test"
    shutil.copytree(sample_data / "test", d)
    cmd = f"steps/make_mfcc.sh --nj 2 --mfcc-config '{MFCC_CONF}' '{d}' '{tmp_path}/log' '{mfcc}'"
    sh(cmd)
    feats = (d / "feats.scp").read_text()
    job1, job2 = sorted(mfcc.glob("raw_mfcc_test.*.1.scp"))[0], sorted(mfcc.glob("raw_mfcc_test.*.2.scp"))[0]
    stamp1 = job1.with_suffix(".ark").stat().st_mtime_ns
    job2.unlink()
    (d / ".mfcc.record").unlink()
    sh(cmd)
    assert job1.with_suffix(".ark").stat().st_mtime_ns == stamp1 and job2.is_file()
    assert (d / "feats.scp").read_text() == feats


@needs_sample
def test_same_basename_does_not_reuse_job_scps(sample_data, tmp_path):
    """Two data dirs called ``test`` (different roots) sharing one mfcc dir:
    the second must get its own features, not the first one's job scps."""
    mfcc = tmp_path / "mfcc"
    a, b = tmp_path / "a" / "test", tmp_path / "b" / "test"
    shutil.copytree(sample_data / "test", a)
    shutil.copytree(sample_data / "dev", b)  # other utterances, same basename
    sh(f"steps/make_mfcc.sh --nj 2 --mfcc-config '{MFCC_CONF}' '{a}' '{tmp_path}/log/a' '{mfcc}'")
    proc = sh(f"steps/make_mfcc.sh --nj 2 --mfcc-config '{MFCC_CONF}' '{b}' '{tmp_path}/log/b' '{mfcc}'", check=False)
    assert proc.returncode == 0, proc.stderr
    assert list(table(b / "feats.scp")) == list(table(b / "utt2spk"))


# ------------------------------------------------------------------ unit tests
def delta1(x, window=2):
    """Order-1 regression filter on frames N..T-N-1 of x (valid part)."""
    t = x.shape[0]
    denom = 2.0 * sum(n * n for n in range(1, window + 1))
    return np.stack([sum(n * (x[i + n] - x[i - n]) for n in range(1, window + 1)) / denom
                     for i in range(window, t - window)])


def pad_edges(x, k):
    return np.concatenate([np.repeat(x[:1], k, 0), x, np.repeat(x[-1:], k, 0)])


@pytest.fixture
def feats():
    rng = np.random.default_rng(1)
    return (rng.standard_normal((40, 5)) * [1, 2, 3, 4, 5] + [10, -3, 0, 7, 1]).astype(np.float32)


def test_add_deltas_order1(feats):
    n, d = 2, feats.shape[1]
    out = features.add_deltas(feats, order=1, window=n)
    assert out.shape == (40, 2 * d) and out.dtype == np.float32
    assert np.array_equal(out[:, :d], feats)
    x = feats.astype(np.float64)
    # Interior frames: delta_t = sum_n n (c_{t+n} - c_{t-n}) / (2 sum_n n^2).
    assert np.allclose(out[n:-n, d:], delta1(x, n), atol=1e-5)
    # Edges: frames beyond the ends are the first/last frame.
    assert np.allclose(out[:, d:], delta1(pad_edges(x, n), n), atol=1e-5)


@pytest.mark.parametrize("window", [1, 2, 3])
def test_add_deltas_order2(feats, window):
    n, d = window, feats.shape[1]
    out = features.add_deltas(feats, order=2, window=n)
    assert out.shape == (40, 3 * d)
    assert np.allclose(out[:, :2 * d], features.add_deltas(feats, order=1, window=n))
    x = feats.astype(np.float64)
    # The order-1 filter applied twice to the edge-replicated static features.
    twice = delta1(delta1(pad_edges(x, 2 * n), n), n)
    assert twice.shape == (40, d)
    assert np.allclose(out[:, 2 * d:], twice, atol=1e-5)
    # In the interior this is also the delta of the delta stream.
    dd = delta1(out[:, d:2 * d].astype(np.float64), n)
    assert np.allclose(out[2 * n:-2 * n, 2 * d:], dd[n:len(dd) - n], atol=1e-5)


def test_add_deltas_short_inputs():
    assert features.add_deltas(np.zeros((0, 3)), order=2).shape == (0, 9)
    one = features.add_deltas(np.ones((1, 3)) * 4, order=2)
    assert np.allclose(one, [[4, 4, 4, 0, 0, 0, 0, 0, 0]], atol=1e-6)
    const = features.add_deltas(np.full((3, 2), 2.5), order=2)  # fewer frames than the window
    assert np.allclose(const[:, 2:], 0)


def test_apply_cmvn(feats):
    stats = features.cmvn_stats(feats)
    assert stats.shape == (2, 6) and stats[0, -1] == 40
    out = features.apply_cmvn(feats, stats)
    assert out.dtype == np.float32
    assert np.allclose(out.mean(0), 0, atol=1e-5)
    assert np.allclose(out.std(0), feats.astype(np.float64).std(0), rtol=1e-5)  # variance kept
    out = features.apply_cmvn(feats, stats, norm_vars=True)
    assert np.allclose(out.mean(0), 0, atol=1e-5)
    assert np.allclose(out.var(0), 1, atol=1e-4)
    # Stats add up over blocks (per-speaker accumulation).
    assert np.allclose(features.cmvn_stats(feats[:15]) + features.cmvn_stats(feats[15:]), stats)


def test_apply_cmvn_errors(feats):
    with pytest.raises(ValueError, match="dim 5"):
        features.apply_cmvn(feats, np.zeros((2, 5)))
    with pytest.raises(ValueError, match="zero frame count"):
        features.apply_cmvn(feats, np.zeros((2, 6)))


def test_read_kaldi_conf(tmp_path):
    conf = tmp_path / "mfcc.conf"
    conf.write_text("# comment\n--num-ceps=13  # trailing\n\n--use-energy=false\n")
    assert features.read_kaldi_conf(conf) == {"num-ceps": "13", "use-energy": "false"}
    conf.write_text("--num-ceps=13\n# ok\nnum-mel-bins 23\n")
    with pytest.raises(ValueError) as e:
        features.read_kaldi_conf(conf)
    assert f"{conf}:3" in str(e.value) and "num-mel-bins 23" in str(e.value)
    conf.write_text("--dither\n")
    with pytest.raises(ValueError, match=r"mfcc\.conf:1"):
        features.read_kaldi_conf(conf)


def test_one_reader_for_load_features_and_iter_features(tmp_path):
    """load_features (acoustic models) and iter_features (GMM/UBM/i-vector
    jobs) read through the same code: same numbers; empty utterances kept
    by the one, skipped and reported by the other; errors name the
    utterance and its feats.scp entry."""
    import kaldiio

    rng = np.random.default_rng(3)
    feats = {"a-1": rng.standard_normal((20, 4)), "a-2": np.zeros((0, 4)), "b-1": rng.standard_normal((9, 4)) + 3}
    d = tmp_path / "data"
    d.mkdir()
    kaldiio.save_ark(str(d / "feats.ark"), {u: m.astype(np.float32) for u, m in feats.items()},
                     scp=str(d / "feats.scp"))
    stats = {s: features.cmvn_stats(np.concatenate([m for u, m in feats.items() if u[0] == s])) for s in "ab"}
    kaldiio.save_ark(str(d / "cmvn.ark"), stats, scp=str(d / "cmvn.scp"))
    (d / "utt2spk").write_text("a-1 a\na-2 a\nb-1 b\n")

    loaded = features.load_features(d, norm_vars=True, delta_order=2)
    assert list(loaded) == ["a-1", "a-2", "b-1"] and loaded["a-2"].shape == (0, 12)
    assert all(m.dtype == np.float32 for m in loaded.values())
    skipped = []
    it = dict(features.iter_features(d, True, 2, cmvn_mode="speaker", skipped=skipped))
    assert list(it) == ["a-1", "b-1"] and skipped == [("a-2", "no frames")]
    for u, m in it.items():
        assert m.dtype == np.float64 and np.array_equal(m, loaded[u].astype(np.float64))
    direct = features.add_deltas(features.apply_cmvn(feats["b-1"].astype(np.float32), stats["b"], True), 2)
    assert np.array_equal(loaded["b-1"], direct)
    assert list(features.load_features(d, utts=["b-1", "a-1"])) == ["b-1", "a-1"]
    with pytest.raises(KeyError, match="no features for utterance c-1"):
        features.load_features(d, utts=["c-1"])

    reader = features.FeatureReader(d, features.FeatureOpts(True, 2, "speaker"), dim=12)
    assert [u for u, _ in reader] == ["a-1", "b-1"]
    assert str(reader).startswith("2 utterances, 29 frames in ") and str(reader).endswith("; 1 skipped")

    bad = dict(feats)
    bad["b-1"] = feats["b-1"].copy()
    bad["b-1"][4, 2] = np.inf
    kaldiio.save_ark(str(d / "feats.ark"), {u: m.astype(np.float32) for u, m in bad.items()},
                     scp=str(d / "feats.scp"))
    entry = table(d / "feats.scp")["b-1"]
    with pytest.raises(ValueError, match=rf"utterance b-1: non-finite features .*1 of 9 frames .*{entry}"):
        features.load_features(d)
