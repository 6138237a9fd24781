"""Tests of the speech + speaker recipe's data preparation (egs/speech_speaker/s5/local)
on tiny corpora in the distributed layouts.

LibriSpeech: ``LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac``
with ``<speaker>-<chapter>.trans.txt`` and ``SPEAKERS.TXT`` (a name holding
``|``, as one of the real file's does), two subsets, speakers 103 and 1034
(their ids sort differently from their utterance ids unless ``-`` sorts
first). VoxCeleb1: ``wav/<speaker>/<video>/<clip>.wav`` (one tree, and the
dev/test zips unpacked apart), video ids holding ``-`` and ``_``, test
speakers id10270/id10271. VoxCeleb2: ``dev/aac/<speaker>/<video>/<clip>.m4a``
made by ffmpeg's AAC encoder (those tests are skipped without ffmpeg). The
audio is numpy noise and tones; the wav.scp entries the preps write are read
back with the toolkit's reader, mtlasr.audio.read_audio. The download
scripts run against a stand-in ``wget`` on PATH that copies local files
(there is no network here).
"""

import importlib.util
import io
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, sh

LOCAL = ROOT / "egs" / "speech_speaker" / "s5" / "local"
LIBRI_PREP = LOCAL / "librispeech_data_prep.py"
VOX_PREP = LOCAL / "voxceleb_data_prep.py"
MAKE_TRIALS = LOCAL / "make_trials.py"
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None,
                                  reason="ffmpeg (Debian package ffmpeg) makes and decodes the .m4a files; "
                                         "not installed")


def run(script, *args, check=False):
    return sh("python3 " + " ".join(shlex.quote(str(a)) for a in [script, *args]), check=check, timeout=120)


def expect_error(script, *args):
    """Run a prep that must fail: exit status 1, one ERROR line, no traceback; returns stderr."""
    p = run(script, *args)
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr and " ERROR " in p.stderr, p.stderr
    return p.stderr


def table(path):
    return dict(line.split(" ", 1) for line in Path(path).read_text().splitlines())


def signal(i: int, n: int) -> np.ndarray:
    """int16 test audio: a tone plus noise, with a loud burst at the end."""
    rng = np.random.default_rng(i)
    t = np.arange(n)
    x = 6000 * np.sin(2 * np.pi * (300 + 40 * i) * t / 16000) + rng.normal(0, 500, n)
    x[-100:] = rng.integers(-32768, 32768, 100)
    return np.clip(x, -32768, 32767).astype(np.int16)


def load(script, name):
    spec = importlib.util.spec_from_file_location(name, script)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def snapshot(d: Path):
    """{relative path: (bytes, mtime)} of every file under d."""
    return {str(p.relative_to(d)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(d.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- LibriSpeech

# subset -> speaker -> chapter -> [(utt, words)]
LIBRI = {
    "train-clean-100": {
        "103": {"1240": [("0000", "CHAPTER ONE MISSUS RACHEL LYNDE IS SURPRISED"), ("0001", "THAT HAD ITS SOURCE")],
                "1241": [("0000", "MATTHEW CUTHBERT AND THE SORREL MARE")]},
        "1034": {"121119": [("0000", "IT WAS A BRIGHT COLD DAY"), ("0002", "WINSTON'S HEART SANK")]},
        "19": {"198": [("0001", "NORTHANGER ABBEY"), ("0002", "BY JANE AUSTEN")],
               "227": [("0000", "A TALE OF TWO CITIES")]},
    },
    "dev-clean": {
        "84": {"121123": [("0000", "GO DO YOU HEAR"), ("0001", "BUT IN LESS THAN FIVE MINUTES")]},
        "174": {"50561": [("0000", "FORGOTTEN TOO THE NAME OF GILLIAN")]},
    },
}
SPEAKERS_TXT = """\
; Some speakers have less than 25 min of data, for reasons explained elsewhere
;ID  |SEX| SUBSET           |MINUTES| NAME
19   | F | train-clean-100  | 25.19 | Kara Shallenberg
84   | F | dev-clean        |  8.02 | Christie Nowak
103  | F | train-clean-100  | 25.08 | Karen Savage
174  | M | dev-clean        |  8.04 | Peter Eastman
1034 | M | train-clean-100  | 25.14 | |CBW|Simon
"""
GENDER = {"19": "f", "84": "f", "103": "f", "174": "m", "1034": "m"}


def build_librispeech(base: Path):
    """base/LibriSpeech in the distributed layout; returns (corpus dir, utt -> samples, utt -> flac)."""
    import soundfile as sf

    corpus = base / "LibriSpeech"
    corpus.mkdir(parents=True)
    (corpus / "SPEAKERS.TXT").write_text(SPEAKERS_TXT)
    samples, paths = {}, {}
    i = 0
    for subset, spks in LIBRI.items():
        for spk, chapters in spks.items():
            for ch, utts in chapters.items():
                d = corpus / subset / spk / ch
                d.mkdir(parents=True)
                lines = []
                for u, words in utts:
                    utt = f"{spk}-{ch}-{u}"
                    x = signal(i, 1200 + 173 * i)
                    i += 1
                    sf.write(d / f"{utt}.flac", x, 16000, format="FLAC", subtype="PCM_16")
                    samples[utt], paths[utt] = x, d / f"{utt}.flac"
                    lines.append(f"{utt} {words}\n")
                (d / f"{spk}-{ch}.trans.txt").write_text("".join(lines))
    return corpus, samples, paths


def libri_set(subset):
    return {f"{s}-{c}-{u}": w for s, chs in LIBRI[subset].items() for c, us in chs.items() for u, w in us}


@pytest.fixture(scope="module")
def libri(tmp_path_factory):
    base = tmp_path_factory.mktemp("libri")
    corpus, samples, paths = build_librispeech(base)
    run(LIBRI_PREP, "--root", base, "--sets", "train-clean-100,dev-clean", base / "data", check=True)
    return base, corpus, samples, paths


def test_help():
    for script, words in ((LIBRI_PREP, ["openslr", "SPEAKERS.TXT"]), (VOX_PREP, ["vox1_dev_wav", "--trials"]),
                          (MAKE_TRIALS, ["--num-targets", "--min-utts-per-speaker"])):
        out = run(script, "--help", check=True).stdout
        assert "Usage:" in out and "e.g.:" in out and all(w in out for w in words), script


def test_librispeech_data_dirs(libri):
    base, _, samples, paths = libri
    for subset, name in (("train-clean-100", "train_clean_100"), ("dev-clean", "dev_clean")):
        d = base / "data" / name
        sh(f"utils/validate_data_dir.sh --no-feats {d}")
        assert sorted(os.listdir(d)) == ["spk2gender", "spk2utt", "text", "utt2dur", "utt2spk", "wav.scp"]
        want = libri_set(subset)
        lines = (d / "utt2spk").read_text().splitlines()
        assert lines == sorted(lines, key=lambda s: s.encode()) and len(lines) == len(want)
        utt2spk = table(d / "utt2spk")
        assert sorted(utt2spk) == sorted(want)
        assert all(utt.startswith(spk + "-") and spk == utt.split("-")[0] for utt, spk in utt2spk.items())
        assert table(d / "text") == want
        assert table(d / "wav.scp") == {u: str(paths[u]) for u in want}
        assert all(abs(float(v) - len(samples[u]) / 16000) < 1e-4 for u, v in table(d / "utt2dur").items())
        assert table(d / "spk2gender") == {s: GENDER[s] for s in set(utt2spk.values())}
    spk2utt = (base / "data" / "train_clean_100" / "spk2utt").read_text().splitlines()
    assert [line.split()[0] for line in spk2utt] == ["103", "1034", "19"]   # C order, as the utterance ids
    assert spk2utt[0] == "103 103-1240-0000 103-1240-0001 103-1241-0000"


def test_librispeech_flac_reads_back_exactly(libri):
    from mtlasr.audio import read_audio

    base, _, samples, _ = libri
    for name in ("train_clean_100", "dev_clean"):
        for utt, entry in table(base / "data" / name / "wav.scp").items():
            x, sr = read_audio(entry, utt)
            assert sr == 16000
            np.testing.assert_array_equal(x, samples[utt].astype(np.float32), err_msg=utt)


def test_librispeech_root_may_be_the_librispeech_dir(libri, tmp_path):
    base, corpus, _, _ = libri
    run(LIBRI_PREP, "--root", corpus, "--sets", "dev-clean", tmp_path / "data", check=True)
    assert snapshot(tmp_path / "data" / "dev_clean").keys() == snapshot(base / "data" / "dev_clean").keys()
    for f in ("wav.scp", "text", "utt2spk", "spk2utt", "utt2dur", "spk2gender"):
        assert (tmp_path / "data" / "dev_clean" / f).read_text() == (base / "data" / "dev_clean" / f).read_text()


def _libri_missing_subset(corpus):
    messages = [f"{corpus / 'test-clean'}", "(subsets there: dev-clean train-clean-100;"]
    return ["--sets", "train-clean-100,test-clean"], messages


def _libri_no_line(corpus):
    trans = corpus / "dev-clean" / "84" / "121123" / "84-121123.trans.txt"
    trans.write_text(trans.read_text().splitlines()[0] + "\n")
    flac = corpus / "dev-clean" / "84" / "121123" / "84-121123-0001.flac"
    return [], ["dev-clean: 1 audio file(s) have no transcript line", f"{flac}: no line 84-121123-0001 in {trans}"]


def _libri_no_trans_file(corpus):
    d = corpus / "dev-clean" / "84" / "121123"
    (d / "84-121123.trans.txt").unlink()
    return [], ["dev-clean: 2 audio file(s) have no transcript line",
                f"{d}: 2 .flac file(s) but no transcript file 84-121123.trans.txt"]


def _libri_no_flac(corpus):
    (corpus / "dev-clean" / "174" / "50561" / "174-50561-0000.flac").unlink()
    trans = corpus / "dev-clean" / "174" / "50561" / "174-50561.trans.txt"
    return [], ["1 transcript line(s) have no .flac file", f"{trans}:1: 174-50561-0000: no "]


def _libri_malformed(corpus):
    trans = corpus / "train-clean-100" / "19" / "198" / "19-198.trans.txt"
    trans.write_text(trans.read_text() + "19-199-0003 A LINE OF ANOTHER CHAPTER\n")
    return [], [f"{trans}:3: expected '19-198-<utt> WORDS', got '19-199-0003 A LINE OF ANOTHER CHAPTER'"]


def _libri_no_words(corpus):
    trans = corpus / "train-clean-100" / "1034" / "121119" / "1034-121119.trans.txt"
    trans.write_text("1034-121119-0000\n" + trans.read_text())
    return [], [f"{trans}:1: expected '1034-121119-<utt> WORDS'"]


def _libri_misnamed_flac(corpus):
    src = corpus / "dev-clean" / "84" / "121123" / "84-121123-0001.flac"
    dst = src.with_name("84-999-0001.flac")
    src.rename(dst)
    return [], [f"{dst}: not named <speaker>-<chapter>-<utt>.flac of its directories"]


def _libri_bad_flac(corpus):
    flac = corpus / "dev-clean" / "174" / "50561" / "174-50561-0000.flac"
    flac.write_bytes(b"not a flac file at all")
    return [], [f"{flac}: cannot read its header"]


@pytest.mark.parametrize("breakage", [_libri_missing_subset, _libri_no_line, _libri_no_trans_file, _libri_no_flac,
                                      _libri_malformed, _libri_no_words, _libri_misnamed_flac, _libri_bad_flac])
def test_librispeech_bad_input_is_a_clear_error_and_writes_nothing(libri, tmp_path, breakage):
    corpus, _, _ = build_librispeech(tmp_path)
    args = ["--root", tmp_path, "--sets", "train-clean-100,dev-clean", tmp_path / "data"]
    shutil.copytree(libri[0] / "data", tmp_path / "data")     # an earlier run's output
    before = snapshot(tmp_path / "data")
    extra, messages = breakage(corpus)
    err = expect_error(LIBRI_PREP, *args, *extra)
    for m in messages:
        assert m in err, (m, err)
    assert snapshot(tmp_path / "data") == before            # the earlier output, untouched
    err = expect_error(LIBRI_PREP, *args[:-1], *extra, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()                # and nothing new


def test_librispeech_allow_missing_leaves_out_with_a_count(tmp_path):
    corpus, _, _ = build_librispeech(tmp_path)
    _libri_no_line(corpus)
    _libri_no_flac(corpus)
    p = run(LIBRI_PREP, "--root", tmp_path, "--sets", "dev-clean", "--allow-missing", tmp_path / "data", check=True)
    assert "dev-clean: 1 audio file(s) have no transcript line, left out" in p.stderr
    assert "dev-clean: 1 transcript line(s) have no .flac file, left out" in p.stderr
    assert sorted(table(tmp_path / "data" / "dev_clean" / "utt2spk")) == ["84-121123-0000"]
    sh(f"utils/validate_data_dir.sh --no-feats {tmp_path / 'data' / 'dev_clean'}")


def test_librispeech_speakers_txt_missing_or_incomplete(tmp_path):
    corpus, _, _ = build_librispeech(tmp_path)
    (corpus / "SPEAKERS.TXT").write_text(SPEAKERS_TXT.replace("174  | M |", "174  | ? |"))
    p = run(LIBRI_PREP, "--root", tmp_path, "--sets", "train-clean-100,dev-clean", tmp_path / "data", check=True)
    assert f"1 line(s) of {corpus / 'SPEAKERS.TXT'}" in p.stderr and "SPEAKERS.TXT:6:" in p.stderr
    assert "dev_clean: 1 of 2 speakers are not in" in p.stderr
    assert not (tmp_path / "data" / "dev_clean" / "spk2gender").exists()
    assert table(tmp_path / "data" / "train_clean_100" / "spk2gender") == {"19": "f", "103": "f", "1034": "m"}


# ----------------------------------------------------------------------------- VoxCeleb1

# speaker -> video -> clips; id10270/id10271 are test speakers
VOX1 = {
    "id10001": {"1zcIwhm-eo4": ["00001", "00002"], "7w0IBEWc_Ow": ["00001"]},
    "id10002": {"0_laIeN-Q44": ["00001", "00003"]},
    "id10270": {"5r0dWxy17C8": ["00001", "00002"], "x6uYqmx31kE": ["00001"]},
    "id10271": {"1gtz-CUIygI": ["00001", "00002"]},
}
VOX1_TEST = ("id10270", "id10271")
TRIALS_O = [("1", "id10270/5r0dWxy17C8/00001.wav", "id10270/x6uYqmx31kE/00001.wav"),
            ("0", "id10270/5r0dWxy17C8/00002.wav", "id10271/1gtz-CUIygI/00001.wav"),
            ("1", "id10271/1gtz-CUIygI/00002.wav", "id10271/1gtz-CUIygI/00001.wav"),
            ("0", "id10271/1gtz-CUIygI/00002.wav", "id10270/x6uYqmx31kE/00001.wav")]
TRIALS_E = [("1", "id10001/1zcIwhm-eo4/00001.wav", "id10001/7w0IBEWc_Ow/00001.wav"),
            ("0", "id10002/0_laIeN-Q44/00003.wav", "id10270/x6uYqmx31kE/00001.wav")]


def vox_utt(rel):
    return rel[:-len(".wav")].replace("/", "-")


def write_trials(path, trials):
    path.write_text("".join(" ".join(t) + "\n" for t in trials))
    return path


def build_vox1(base: Path, split: bool = False):
    """VoxCeleb1 under base/voxceleb1: one wav/ tree, or (split) vox1_dev_wav/wav + vox1_test_wav/wav.
    Returns (vox1 dir, utt -> samples, utt -> path)."""
    import soundfile as sf

    vox1 = base / "voxceleb1"
    samples, paths = {}, {}
    i = 100
    for spk, videos in VOX1.items():
        top = vox1 / (("vox1_test_wav" if spk in VOX1_TEST else "vox1_dev_wav") + "/wav" if split else "wav")
        for video, clips in videos.items():
            for c in clips:
                p = top / spk / video / f"{c}.wav"
                p.parent.mkdir(parents=True, exist_ok=True)
                x = signal(i, 900 + 211 * (i - 100))
                i += 1
                sf.write(p, x, 16000, subtype="PCM_16")
                utt = f"{spk}-{video}-{c}"
                samples[utt], paths[utt] = x, p
    return vox1, samples, paths


@pytest.fixture(scope="module")
def vox1(tmp_path_factory):
    base = tmp_path_factory.mktemp("vox1")
    vox1, samples, paths = build_vox1(base)
    o = write_trials(base / "veri_test2.txt", TRIALS_O)
    e = write_trials(base / "list_test_all2.txt", TRIALS_E)
    run(VOX_PREP, "--vox1", vox1, "--trials", o, "--trials", f"trials_e={e}", base / "data", check=True)
    return base, vox1, samples, paths


def test_voxceleb1_data_dirs_and_trials(vox1):
    base, _, samples, paths = vox1
    data = base / "data"
    assert sorted(os.listdir(data)) == ["voxceleb1", "voxceleb1_dev", "voxceleb1_test"]
    for name, spks in (("voxceleb1_dev", ["id10001", "id10002"]), ("voxceleb1_test", list(VOX1_TEST)),
                       ("voxceleb1", list(VOX1))):
        d = data / name
        sh(f"utils/validate_data_dir.sh --no-feats --no-text {d}")
        want = {f"{s}-{v}-{c}": s for s in spks for v, cs in VOX1[s].items() for c in cs}
        lines = (d / "utt2spk").read_text().splitlines()
        assert lines == sorted(lines, key=lambda s: s.encode())
        assert table(d / "utt2spk") == want
        assert table(d / "wav.scp") == {u: str(paths[u]) for u in want}
        assert all(abs(float(v) - len(samples[u]) / 16000) < 1e-4 for u, v in table(d / "utt2dur").items())
        assert sorted(table(d / "utt2dur")) == sorted(want)
    assert (data / "voxceleb1_test" / "trials").read_text() == "".join(
        f"{lab} {vox_utt(a)} {vox_utt(b)}\n" for lab, a, b in TRIALS_O)
    assert (data / "voxceleb1_test" / "trials").read_text().splitlines()[0] == \
        "1 id10270-5r0dWxy17C8-00001 id10270-x6uYqmx31kE-00001"
    assert (data / "voxceleb1" / "trials_e").read_text() == "".join(
        f"{lab} {vox_utt(a)} {vox_utt(b)}\n" for lab, a, b in TRIALS_E)
    assert not (data / "voxceleb1" / "trials").exists() and not (data / "voxceleb1_dev" / "trials").exists()


def test_voxceleb1_trials_read_by_the_toolkit(vox1):
    from mtlasr.speaker import read_trials

    base = vox1[0]
    d = base / "data" / "voxceleb1_test"
    pairs, target = read_trials(d / "trials", set(table(d / "utt2spk")))
    assert len(pairs) == 4 and target.tolist() == [True, False, True, False]


def test_voxceleb1_wav_reads_back_exactly(vox1):
    from mtlasr.audio import read_audio

    base, _, samples, _ = vox1
    for utt, entry in table(base / "data" / "voxceleb1" / "wav.scp").items():
        x, sr = read_audio(entry, utt)
        assert sr == 16000
        np.testing.assert_array_equal(x, samples[utt].astype(np.float32), err_msg=utt)


def test_voxceleb1_split_layout_gives_the_same_dirs(vox1, tmp_path):
    base = vox1[0]
    vox, _, paths = build_vox1(tmp_path, split=True)
    o = write_trials(tmp_path / "veri_test2.txt", TRIALS_O)
    run(VOX_PREP, "--vox1", vox, "--vox1-sets", "dev,test,all", "--trials", o, tmp_path / "data", check=True)
    for name in ("voxceleb1_dev", "voxceleb1_test", "voxceleb1"):
        for f in ("utt2spk", "spk2utt", "utt2dur"):
            assert (tmp_path / "data" / name / f).read_text() == (base / "data" / name / f).read_text(), (name, f)
        assert table(tmp_path / "data" / name / "wav.scp") == {
            u: str(paths[u]) for u in table(tmp_path / "data" / name / "utt2spk")}
    assert "vox1_test_wav/wav/id10270/" in (tmp_path / "data" / "voxceleb1_test" / "wav.scp").read_text()
    assert (tmp_path / "data" / "voxceleb1_test" / "trials").read_text() == \
        (base / "data" / "voxceleb1_test" / "trials").read_text()


def test_voxceleb1_bad_trials_are_clear_errors_and_write_nothing(vox1, tmp_path):
    vox = vox1[1]
    bad = write_trials(tmp_path / "bad.txt", TRIALS_O[:2] + [("1", "id10270/5r0dWxy17C8/00009.wav",
                                                                  "id10270/x6uYqmx31kE/00001.wav")])
    err = expect_error(VOX_PREP, "--vox1", vox, "--trials", bad, tmp_path / "data")
    assert f"{bad}:3: id10270/5r0dWxy17C8/00009.wav: no such file in the VoxCeleb1 audio under {vox}" in err
    assert "(1 trial side(s) name files not there" in err
    (tmp_path / "bad2.txt").write_text("1 id10270/5r0dWxy17C8/00001.wav\n")
    err = expect_error(VOX_PREP, "--vox1", vox, "--trials", tmp_path / "bad2.txt", tmp_path / "data")
    assert f"{tmp_path / 'bad2.txt'}:1: expected '<1|0> <speaker>/<video>/<clip>.wav" in err
    (tmp_path / "bad3.txt").write_text("\n2 id10270/5r0dWxy17C8/00001.wav id10270/x6uYqmx31kE/00001.wav\n")
    err = expect_error(VOX_PREP, "--vox1", vox, "--trials", tmp_path / "bad3.txt", tmp_path / "data")
    assert f"{tmp_path / 'bad3.txt'}:2: expected" in err
    err = expect_error(VOX_PREP, "--vox1", vox, "--trials", tmp_path / "none.txt", tmp_path / "data")
    assert f"--trials {tmp_path / 'none.txt'}: no such file" in err
    err = expect_error(VOX_PREP, "--vox1", vox, "--trials", f"wav.scp={bad}", tmp_path / "data")
    assert "'wav.scp' is not a usable file name for a trial list" in err
    assert not (tmp_path / "data").exists()


def test_voxceleb_bad_trees_are_clear_errors(tmp_path):
    err = expect_error(VOX_PREP, "--vox1", tmp_path / "nothere", tmp_path / "data")
    assert f"--vox1 {tmp_path / 'nothere'}: no such directory" in err
    (tmp_path / "empty" / "wav").mkdir(parents=True)
    err = expect_error(VOX_PREP, "--vox1", tmp_path / "empty", tmp_path / "data")
    assert "no VoxCeleb1 audio (<speaker>/<video>/<clip>.wav) under" in err
    assert "no corpus given" in expect_error(VOX_PREP, tmp_path / "data")
    # only the test zip unpacked: dev cannot be made, test can
    vox, _, paths = build_vox1(tmp_path, split=True)
    shutil.rmtree(vox / "vox1_dev_wav")
    err = expect_error(VOX_PREP, "--vox1", vox, tmp_path / "data")
    assert "voxceleb1_dev: no VoxCeleb1 dev audio under" in err and "leave dev out of --vox1-sets" in err
    assert not (tmp_path / "data").exists()
    e = write_trials(tmp_path / "e.txt", TRIALS_E)
    err = expect_error(VOX_PREP, "--vox1", vox, "--vox1-sets", "test", "--trials", e, tmp_path / "data")
    assert f"{e}:1: id10001/1zcIwhm-eo4/00001.wav: no such file" in err and "3 trial side(s)" in err
    run(VOX_PREP, "--vox1", vox, "--vox1-sets", "test", tmp_path / "data", check=True)
    assert os.listdir(tmp_path / "data") == ["voxceleb1_test"]
    # a clip name with a space cannot make an utterance id
    bad = paths["id10270-x6uYqmx31kE-00001"].with_name("0000 2.wav")
    shutil.copy(paths["id10270-x6uYqmx31kE-00001"], bad)
    err = expect_error(VOX_PREP, "--vox1", vox, "--vox1-sets", "test", tmp_path / "data2")
    assert f"{bad}: a speaker, video or clip name with white space" in err
    assert not (tmp_path / "data2").exists()


# ----------------------------------------------------------------------------- VoxCeleb2 (.m4a)

# speaker -> video -> [(clip, sample rate, samples)]
VOX2 = {
    "id00012": {"21Uxsk56VDQ": [("00001", 16000, 3000), ("00002", 16000, 4100)]},
    "id00015": {"0fijmz4v-_E": [("00001", 24000, 5000)]},
}


def build_vox2(base: Path):
    """VoxCeleb2 under base/voxceleb2/dev/aac, AAC in .m4a by ffmpeg; returns (dir, utt -> (rate, samples))."""
    import soundfile as sf

    vox2 = base / "voxceleb2"
    orig = {}
    for spk, videos in VOX2.items():
        for video, clips in videos.items():
            for clip, sr, n in clips:
                d = vox2 / "dev" / "aac" / spk / video
                d.mkdir(parents=True, exist_ok=True)
                t = np.arange(n)
                x = (8000 * np.sin(2 * np.pi * 440 * t / sr)).astype(np.int16)
                sf.write(d / f"{clip}.wav", x, sr)
                subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(d / f"{clip}.wav"), "-c:a",
                                "aac", "-b:a", "64k", str(d / f"{clip}.m4a")], check=True)
                (d / f"{clip}.wav").unlink()
                orig[f"{spk}-{video}-{clip}"] = (sr, n)
    return vox2, orig


def check_decoded(utt, x, sr, orig):
    """16 kHz, the tone of the source, and as long as it up to the end padding
    of the last AAC frame (1024 samples at the source rate; ffmpeg trims the
    encoder's priming samples but not that padding)."""
    src_sr, n = orig[utt]
    want = n * 16000 / src_sr
    assert sr == 16000
    assert want - 16 <= len(x) <= want + 1024 * 16000 / src_sr + 16, (utt, len(x), want)
    m = int(min(len(x), want))
    ref = np.sin(2 * np.pi * 440 * np.arange(m) / 16000)
    assert np.corrcoef(np.asarray(x[:m], dtype=float), ref)[0, 1] > 0.95, utt


@pytest.fixture(scope="module")
def vox2(tmp_path_factory):
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg (Debian package ffmpeg) makes and decodes the .m4a files; not installed")
    base = tmp_path_factory.mktemp("vox2")
    vox2, orig = build_vox2(base)
    run(VOX_PREP, "--vox2", vox2, base / "data", check=True)
    return base, vox2, orig


@needs_ffmpeg
def test_voxceleb2_pipes(vox2):
    import soundfile as sf

    base, vox, orig = vox2
    d = base / "data" / "voxceleb2_dev"
    assert sorted(os.listdir(d)) == ["spk2utt", "utt2spk", "wav.scp"]       # no utt2dur through pipes
    sh(f"utils/validate_data_dir.sh --no-feats --no-text {d}")
    assert table(d / "utt2spk") == {u: u.split("-")[0] for u in orig}
    assert table(d / "spk2utt") == {"id00012": "id00012-21Uxsk56VDQ-00001 id00012-21Uxsk56VDQ-00002",
                                    "id00015": "id00015-0fijmz4v-_E-00001"}
    wav = table(d / "wav.scp")
    for utt, entry in wav.items():
        spk, video, clip = utt.split("-", 1)[0], "-".join(utt.split("-")[1:-1]), utt.split("-")[-1]
        path = (vox / "dev" / "aac" / spk / video / f"{clip}.m4a").absolute()
        assert entry == f"ffmpeg -nostdin -v error -i {path} -f wav -ar 16000 -ac 1 - |"
        out = subprocess.run(entry[:-1], shell=True, capture_output=True, check=True).stdout
        x, sr = sf.read(io.BytesIO(out), dtype="int16")
        check_decoded(utt, x, sr, orig)


@needs_ffmpeg
def test_voxceleb2_pipes_read_with_read_audio(vox2):
    from mtlasr.audio import read_audio

    base, _, orig = vox2
    # ffmpeg writes to a pipe a WAV header whose sizes are 0xFFFFFFFF (unknown)
    for utt, entry in table(base / "data" / "voxceleb2_dev" / "wav.scp").items():
        x, sr = read_audio(entry, utt)
        check_decoded(utt, x, sr, orig)


@needs_ffmpeg
def test_voxceleb2_decode_to_writes_wav_files_once(vox2, tmp_path):
    from mtlasr.audio import read_audio

    _, vox, orig = vox2
    out = tmp_path / "wav"
    args = ["--vox2", vox, "--decode-to", out, "--nj", "2", tmp_path / "data"]
    run(VOX_PREP, *args, check=True)
    d = tmp_path / "data" / "voxceleb2_dev"
    sh(f"utils/validate_data_dir.sh --no-feats --no-text {d}")
    wav = table(d / "wav.scp")
    assert wav == {u: str((out / u.split("-")[0] / f"{u}.wav").absolute()) for u in orig}
    stamps = {}
    for utt, entry in wav.items():
        x, sr = read_audio(entry, utt)
        check_decoded(utt, x, sr, orig)
        assert abs(float(table(d / "utt2dur")[utt]) - len(x) / 16000) < 1e-4
        stamps[entry] = os.stat(entry).st_mtime_ns
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    run(VOX_PREP, *args, check=True)
    assert {e: os.stat(e).st_mtime_ns for e in stamps} == stamps


@needs_ffmpeg
def test_voxceleb2_undecodable_m4a_with_decode_to(vox2, tmp_path):
    import soundfile as sf

    vox = tmp_path / "voxceleb2"
    bad = vox / "dev" / "aac" / "id00020" / "abc" / "00001.m4a"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not an m4a file")
    good = vox / "dev" / "aac" / "id00021" / "abc" / "00001.wav"     # a tree converted to WAV is read too
    good.parent.mkdir(parents=True)
    sf.write(good, signal(1, 800), 16000, subtype="PCM_16")
    err = expect_error(VOX_PREP, "--vox2", vox, "--decode-to", tmp_path / "wav", tmp_path / "data")
    assert f"{bad}: ffmpeg could not decode it" in err
    assert not (tmp_path / "data").exists() and not list((tmp_path / "wav").rglob("*.wav*"))
    bad.unlink()
    run(VOX_PREP, "--vox2", vox, tmp_path / "data", check=True)
    assert table(tmp_path / "data" / "voxceleb2_dev" / "wav.scp") == {"id00021-abc-00001": str(good)}


def test_voxceleb2_missing_part(tmp_path):
    (tmp_path / "voxceleb2" / "dev" / "aac").mkdir(parents=True)
    err = expect_error(VOX_PREP, "--vox2", tmp_path / "voxceleb2", tmp_path / "data")
    assert "no VoxCeleb2 audio (<speaker>/<video>/<clip>.m4a) under" in err
    assert not (tmp_path / "data").exists()


# ----------------------------------------------------------------------------- make_trials

def data_dir(path: Path, utt2spk):
    path.mkdir(parents=True, exist_ok=True)
    (path / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in sorted(utt2spk.items())))
    return path


SMALL = {"a-1": "a", "a-2": "a", "a-3": "a", "b-1": "b", "b-2": "b", "c-1": "c"}   # 4 target, 11 non-target pairs


def check_trials(lines, utt2spk, n_target, n_nontarget):
    trials = [line.split() for line in lines]
    assert all(len(t) == 3 and t[0] in ("0", "1") for t in trials)
    assert lines == sorted(lines, key=lambda s: s.split(" ", 1)[1].encode())
    assert len({(a, b) for _, a, b in trials}) == len(trials)
    assert all(a.encode() < b.encode() for _, a, b in trials)
    assert all((lab == "1") == (utt2spk[a] == utt2spk[b]) for lab, a, b in trials)
    assert sum(t[0] == "1" for t in trials) == n_target and sum(t[0] == "0" for t in trials) == n_nontarget


def test_make_trials_cli_is_deterministic(tmp_path):
    d = data_dir(tmp_path / "d", SMALL)
    args = ["--num-targets", "3", "--num-nontargets", "5"]
    for seed, out in ((1, "t1"), (1, "t2"), (2, "t3")):
        run(MAKE_TRIALS, *args, "--seed", seed, d, tmp_path / out, check=True)
    t1 = (tmp_path / "t1").read_text()
    assert t1 == (tmp_path / "t2").read_text()
    check_trials(t1.splitlines(), SMALL, 3, 5)
    check_trials((tmp_path / "t3").read_text().splitlines(), SMALL, 3, 5)
    p = run(MAKE_TRIALS, "--num-targets", "10", d, tmp_path / "all", check=True)     # more than there are
    assert "10 target trials asked for, but only 4 distinct pairs exist" in p.stderr
    check_trials((tmp_path / "all").read_text().splitlines(), SMALL, 4, 11)


def test_make_trials_sampling(monkeypatch):
    mt = load(MAKE_TRIALS, "make_trials")
    rng = np.random.default_rng(0)
    utt2spk = {f"s{k:02d}-{u:03d}": f"s{k:02d}" for k in range(40) for u in range(int(rng.integers(1, 30)))}
    exact = mt.make_trials(utt2spk, 300, 500, seed=7)
    assert exact == mt.make_trials(utt2spk, 300, 500, seed=7) != mt.make_trials(utt2spk, 300, 500, seed=8)
    check_trials([f"{lab} {a} {b}" for lab, a, b in exact], utt2spk, 300, 500)
    monkeypatch.setattr(mt, "ENUMERATE_MAX", 0)          # the rejection sampler of large sets
    drawn = mt.make_trials(utt2spk, 300, 500, seed=7)
    assert drawn == mt.make_trials(utt2spk, 300, 500, seed=7)
    check_trials([f"{lab} {a} {b}" for lab, a, b in drawn], utt2spk, 300, 500)
    # uniform over pairs: a speaker's share of the targets follows its number of pairs
    many = mt.make_trials(utt2spk, 3000, 10, seed=1)
    spk_n = {s: sum(v == s for v in utt2spk.values()) for s in set(utt2spk.values())}
    pairs = {s: n * (n - 1) / 2 for s, n in spk_n.items()}
    big = max(pairs, key=pairs.get)
    share = sum(lab == 1 and utt2spk[a] == big for lab, a, _ in many) / 3000
    assert abs(share - pairs[big] / sum(pairs.values())) < 0.03


@pytest.mark.parametrize("utt2spk,args,message", [
    ({"a-1": "a", "b-1": "b", "c-1": "c"}, [], "utt2spk: no speaker has 2 or more utterances (3 speakers, 3 "
                                               "utterances): no same-speaker (target) trial can be made"),
    ({"a-1": "a", "a-2": "a"}, [], "utt2spk: a single speaker (a): no different-speaker (non-target) trial"),
    (SMALL, ["--min-utts-per-speaker", "2"], "utt2spk: 1 speaker(s) have fewer than 2 utterances "
                                             "(--min-utts-per-speaker 2): c (1)"),
    (SMALL, ["--min-utts-per-speaker", "3"], "utt2spk: 2 speaker(s) have fewer than 3 utterances "
                                             "(--min-utts-per-speaker 3): b (2), c (1)"),
    (SMALL, ["--num-targets", "0"], "must be at least 1 (got 0, 1000)"),
])
def test_make_trials_errors(tmp_path, utt2spk, args, message):
    d = data_dir(tmp_path / "d", utt2spk)
    err = expect_error(MAKE_TRIALS, *args, d, tmp_path / "trials")
    assert message in err, err
    if message.startswith("utt2spk"):
        assert f"{d}/{message}" in err       # names the file
    assert not (tmp_path / "trials").exists()


def test_make_trials_bad_data_dir(tmp_path):
    err = expect_error(MAKE_TRIALS, tmp_path, tmp_path / "trials")
    assert f"{tmp_path / 'utt2spk'}: no such file" in err
    (tmp_path / "utt2spk").write_text("a-1 a\na-2\n")
    assert f"{tmp_path / 'utt2spk'}:2: no value for key 'a-2'" in expect_error(MAKE_TRIALS, tmp_path,
                                                                                 tmp_path / "trials")
    assert not (tmp_path / "trials").exists()


# ----------------------------------------------------------------------------- download scripts

FAKE_WGET = """#!/usr/bin/env bash
# stand-in for wget: copies $MIRROR/<last part of the URL> to the -O file
set -eu
out=
while [ $# -gt 1 ]; do
  case $1 in -O) out=$2; shift 2 ;; *) shift ;; esac
done
echo "$1" >> "$MIRROR/calls"
[ -f "$MIRROR/${1##*/}" ] || { echo "404 ${1##*/}" >&2; exit 8; }
cp "$MIRROR/${1##*/}" "$out"
"""


def fake_wget(tmp_path):
    bin_dir, mirror = tmp_path / "bin", tmp_path / "mirror"
    bin_dir.mkdir()
    mirror.mkdir()
    (bin_dir / "wget").write_text(FAKE_WGET)
    (bin_dir / "wget").chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", MIRROR=str(mirror))
    return mirror, env


def bash(script, *args, env):
    return subprocess.run([str(script), *map(str, args)], capture_output=True, text=True, env=env, timeout=60,
                          cwd=ROOT)


def test_download_scripts_help_and_usage():
    for s in ("download_librispeech.sh", "download_voxceleb.sh"):
        p = bash(LOCAL / s, "--help", env=None)
        assert p.returncode == 0 and "Usage:" in p.stderr and "e.g.:" in p.stderr, p.stderr
        p = bash(LOCAL / s, env=None)
        assert p.returncode == 1 and "Usage:" in p.stderr
        assert os.access(LOCAL / s, os.X_OK) and (LOCAL / s).read_text().startswith("#!/usr/bin/env bash\n")


def test_download_librispeech_unpacks_once(tmp_path):
    mirror, env = fake_wget(tmp_path)
    src = tmp_path / "src"
    build_librispeech(src)
    with tarfile.open(mirror / "dev-clean.tar.gz", "w:gz") as tar:
        tar.add(src / "LibriSpeech" / "dev-clean", "LibriSpeech/dev-clean")
        tar.add(src / "LibriSpeech" / "SPEAKERS.TXT", "LibriSpeech/SPEAKERS.TXT")
    db = tmp_path / "db"
    args = ["--subsets", "dev-clean", "--url-base", "https://example.invalid/12", db]
    p = bash(LOCAL / "download_librispeech.sh", *args, env=env)
    assert p.returncode == 0, p.stderr
    assert (db / "LibriSpeech" / "dev-clean" / ".complete").is_file()
    assert (db / "LibriSpeech" / "dev-clean" / "84" / "121123" / "84-121123.trans.txt").is_file()
    assert (mirror / "calls").read_text() == "https://example.invalid/12/dev-clean.tar.gz\n"
    p = bash(LOCAL / "download_librispeech.sh", *args, env=env)
    assert p.returncode == 0 and "already here (.complete), skipped" in p.stderr
    assert (mirror / "calls").read_text().count("\n") == 1
    run(LIBRI_PREP, "--root", db, "--sets", "dev-clean", tmp_path / "data", check=True)
    assert sorted(table(tmp_path / "data" / "dev_clean" / "utt2spk")) == sorted(libri_set("dev-clean"))
    # a failed download, and an archive whose md5 is wrong
    p = bash(LOCAL / "download_librispeech.sh", "--subsets", "test-clean", "--url-base", "https://example.invalid/12",
             db, env=env)
    assert p.returncode == 1 and "download of https://example.invalid/12/test-clean.tar.gz failed" in p.stderr
    (tmp_path / "md5").write_text("0123456789abcdef0123456789abcdef  dev-clean.tar.gz\n")
    (db / "LibriSpeech" / "dev-clean" / ".complete").unlink()
    p = bash(LOCAL / "download_librispeech.sh", "--md5-file", tmp_path / "md5", *args, env=env)
    assert p.returncode == 1 and "expected 0123456789abcdef0123456789abcdef" in p.stderr
    assert (db / "dev-clean.tar.gz.bad").is_file() and not (db / "LibriSpeech" / "dev-clean" / ".complete").exists()


def test_download_voxceleb_lists_and_check(vox1, tmp_path):
    mirror, env = fake_wget(tmp_path)
    write_trials(mirror / "veri_test2.txt", TRIALS_O)
    (mirror / "list_test_hard2.txt").write_text("<html>not found</html>\n")
    db = tmp_path / "db"
    p = bash(LOCAL / "download_voxceleb.sh", "--trials", "O", "--vox1", vox1[1], db, env=env)
    assert p.returncode == 0, p.stderr
    assert (db / "meta" / "veri_test2.txt").read_text() == (mirror / "veri_test2.txt").read_text()
    assert "VoxCeleb1: " in p.stderr and "4 speakers, 10 .wav clips" in p.stderr
    assert "the full corpus has 1251 and 153516" in p.stderr
    assert "no audio in" in p.stderr and "voxceleb2" in p.stderr                 # none given: just said
    p = bash(LOCAL / "download_voxceleb.sh", "--trials", "H", "--vox1", vox1[1], db, env=env)
    assert p.returncode == 1 and "list_test_hard2.txt is not a trial list" in p.stderr
    assert not list((db / "meta").glob("list_test_hard2*"))
    p = bash(LOCAL / "download_voxceleb.sh", "--download-trials", "false", tmp_path / "empty", env=env)
    assert p.returncode == 1 and "Request access at https://www.robots.ox.ac.uk/~vgg/data/voxceleb/" in p.stderr


def test_eq5_lambda_from_the_single_task_histories(tmp_path):
    """Seed 003 eq. 5 on the last epoch's training losses; the paper's
    averages (0.43, 3.14) give its 0.88; a missing history or loss is named."""
    script = LOCAL / "eq5_lambda.py"
    speech, spk = tmp_path / "stl_speech_s0", tmp_path / "stl_speaker_s0"
    speech.mkdir()
    spk.mkdir()
    (speech / "history.json").write_text('[{"epoch": 1, "train_loss": 9.0}, {"epoch": 2, "train_loss": 0.43}]')
    (spk / "history.json").write_text('[{"epoch": 1, "train_loss": 420.0, "train_spk_loss": 3.14}]')
    p = run(script, speech, spk, check=True)
    assert p.stdout == "0.8796\n" and "L_s = 0.4300" in p.stderr and "L_k = 3.1400" in p.stderr
    p = run(script, speech, tmp_path / "none")
    assert p.returncode == 1 and f"{tmp_path / 'none' / 'history.json'}: cannot read" in p.stderr
    p = run(script, spk, speech)  # swapped: the speech history has no speaker loss
    assert p.returncode == 1 and "no 'train_spk_loss'" in p.stderr
