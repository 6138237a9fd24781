"""Tests of the WSJ recipe's local/wsj_data_prep.py on a small corpus in the LDC layout.

The test builds WSJ0 and WSJ1 trees the way the LDC discs are laid out
(``11-1.1/wsj0/si_tr_s/011/011c0201.wv1``, ``11-13.1/wsj0/doc/indices/...ndx``,
``<id[:6]>00.dot`` transcripts, ``spkrinfo.txt``), in lower case and in upper
case. The audio is numpy noise and tones, written as WSJ writes it: NIST
SPHERE with a 1024-byte header and shorten-compressed samples (made by
tests/shorten_fixture.py, since no shorten encoder is packaged), plus one
stand-alone-style shorten stream (with a RIFF header inside) and one
uncompressed big-endian SPHERE file. The .wv1 files are decoded through the
wav.scp entries the prep writes, with the project's audio reader, and must
give the original samples exactly (shorten is lossless); those tests need
ffmpeg and are skipped without it.
"""

import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, sh
from shorten_fixture import encode_shorten, sphere_header, write_sphere

PREP = ROOT / "egs" / "wsj" / "s5" / "local" / "wsj_data_prep.py"
SPH2WAV = ROOT / "egs" / "wsj" / "s5" / "local" / "sph2wav.py"
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None,
                                  reason="ffmpeg (Debian package ffmpeg) decodes the shorten .wv1 files; not installed")

# (disc, path inside the disc, raw .dot transcript, how the audio is stored)
UTTS = [
    ("11-1.1", "wsj0/si_tr_s/011/011c0201", r"The [loud_breath] company's shares rose \,COMMA analysts said \.PERIOD",
     "shorten"),
    ("11-1.1", "wsj0/si_tr_s/011/011c0202", "[<door_slam] He said <and> the *mispronounced* word ~", "shorten"),
    ("11-1.1", "wsj0/si_tr_s/01a/01ac0201", "Prices fell three .point five %percent [door_slam>] . today", "shorten"),
    ("11-2.1", "wsj0/si_tr_s/401/401c0201", "speaker four oh one is left out", "shorten"),
    ("11-2.1", "wsj0/si_tr_s/402/402c0201",
     r'\"DOUBLE-QUOTE Yes --DASH it is [phone_ring/] done [/phone_ring]', "verbatim"),
    ("13-1.1", "wsj1/si_tr_s/46h/46hc0201", "rock 'n roll", "shorten"),
    ("13-1.1", "wsj1/si_tr_s/46h/46hc0202", r"\(LEFT-PAREN in brief \)RIGHT-PAREN ok", "pcm_be"),
    ("11-14.1", "wsj0/si_et_20/440/440c0201", "Stocks closed higher", "shorten"),
    ("11-14.1", "wsj0/si_et_20/441/441c0201", "Bonds were mixed", "shorten"),
    ("13-16.1", "wsj1/si_dt_20/4k0/4k0c0301", "The dollar [lip_smack] gained", "shorten"),
    ("13-16.1", "wsj1/si_dt_20/4k0/4k0c0302", "Gold fell", "shorten"),
    ("13-16.1", "wsj1/si_dt_20/4k0/4k0c0303", "[loud_breath] ~", "shorten"),
    ("13-33.1", "wsj1/si_et_h1/4k8/4k8c0201", "Oil prices eased", "shorten"),
]
# set -> (index disc, index path, entries as "disc:path" with the disc in index notation)
INDICES = {
    "wsj0_train": ("11-13.1", "wsj0/doc/indices/train/tr_s_wv1.ndx",
                   [f"{d.replace('-', '_').replace('.', '_')}:{p}.wv1" for d, p, _, _ in UTTS[:5]]),
    "wsj1_train": ("13-34.1", "wsj1/doc/indices/si_tr_s.ndx",
                   [f"13_1_1:{p}.wv1" for _, p, _, _ in UTTS[5:7]]),
    "eval92": ("11-13.1", "wsj0/doc/indices/test/nvp/si_et_20.ndx",   # no extension, as in the LDC file
               [f"11_14_1:{p}" for _, p, _, _ in UTTS[7:9]]),
    "dev93": ("13-34.1", "wsj1/doc/indices/h1_p0.ndx", [f"13_16_1: {p}.wv1" for _, p, _, _ in UTTS[9:12]]),
    "eval93": ("13-32.1", "wsj1/doc/indices/wsj1/eval/h1_p0.ndx",      # names disc 13_32_1 for 13_33_1
               [f"13_32_1:{p}.wv1" for _, p, _, _ in UTTS[12:13]]),
}
SPKRINFO = {  # on the discs; WSJ0's training speakers are not (the LDC web file, --spkrinfo)
    ("11-13.1", "wsj0/doc/spkrinfo.txt"): "440  M  x\n441  F  x\n",
    ("13-34.1", "wsj1/doc/train/spkrinfo.txt"): "46h  F  x\n",
    ("13-34.1", "wsj1/doc/dev_spok/spkrinfo.txt"): "4k0  M  x\n",
    ("13-32.1", "wsj1/doc/evl_spok/spkrinfo.txt"): "4k8  F  x\n",
}
WSJ0_TRAIN_SPKRINFO = ";ID  Sex\n011  M  -- \n01a  F\n402  M\n"

EXPECTED_TEXT = {
    "011c0201": "THE COMPANY'S SHARES ROSE ,COMMA ANALYSTS SAID .PERIOD",
    "011c0202": "HE SAID AND THE MISPRONOUNCED WORD",
    "01ac0201": "PRICES FELL THREE POINT FIVE PERCENT TODAY",
    "402c0201": '"DOUBLE-QUOTE YES -DASH IT IS DONE',
    "46hc0201": "ROCK 'N ROLL",
    "46hc0202": "(LEFT-PAREN IN BRIEF )RIGHT-PAREN OK",
    "440c0201": "STOCKS CLOSED HIGHER",
    "441c0201": "BONDS WERE MIXED",
    "4k0c0301": "THE DOLLAR GAINED",
    "4k0c0302": "GOLD FELL",
    "4k8c0201": "OIL PRICES EASED",
}
SETS = {
    "train_si84": ["011c0201", "011c0202", "01ac0201", "402c0201"],
    "train_si284": ["011c0201", "011c0202", "01ac0201", "402c0201", "46hc0201", "46hc0202"],
    "test_eval92": ["440c0201", "441c0201"],
    "test_dev93": ["4k0c0301", "4k0c0302"],         # 4k0c0303 is only noise: left out
    "test_eval93": ["4k8c0201"],
}
ALL_SETS = ",".join(SETS)


def signal(i: int) -> np.ndarray:
    """Test audio: a tone, noise, a silent stretch (a FN_ZERO block) and a
    loud burst; lengths not a multiple of the 256-sample block."""
    rng = np.random.default_rng(i)
    n = 1600 + 397 * i
    t = np.arange(n)
    x = 4000 * np.sin(2 * np.pi * (200 + 50 * i) * t / 16000) + rng.normal(0, 300, n)
    x[300:812] = 0
    x[-200:] = rng.integers(-32768, 32768, 200)
    return np.clip(x, -32768, 32767).astype(np.int16)


def cased(rel: str, upper: bool) -> str:
    return rel.upper() if upper else rel


def build_corpus(base: Path, upper: bool = False):
    """WSJ0 under base/csr_1, WSJ1 under base/csr_2 (upper: every path inside
    a disc in upper case, the discs one level deeper). Returns
    (wsj0 dir, wsj1 dir, utt -> samples, utt -> audio path)."""
    wsj0, wsj1 = base / "csr_1", base / "csr_2"
    if upper:
        wsj0, wsj1 = base / "csr_1" / "WSJ0", base / "csr_2" / "WSJ1"

    def disc(d: str) -> Path:
        return (wsj0 if d.startswith("11-") else wsj1) / d

    samples, paths = {}, {}
    for i, (d, rel, trans, kind) in enumerate(UTTS):
        utt = rel.rsplit("/", 1)[1]
        x = signal(i)
        path = disc(d) / cased(rel + ".wv1", upper)
        if kind == "pcm_be":
            write_sphere(path, x, shorten=False, byte_format="10")
        elif kind == "verbatim":
            path.parent.mkdir(parents=True, exist_ok=True)
            fields = {"channel_count": 1, "sample_count": len(x), "sample_rate": 16000, "sample_n_bytes": 2,
                      "sample_byte_format": "01", "sample_coding": "pcm,embedded-shorten-v2.00"}
            path.write_bytes(sphere_header(fields) + encode_shorten(x, verbatim_wav_header=True))
        else:
            write_sphere(path, x)
        samples[utt], paths[utt] = x, path
        # the eval92 transcripts live on another disc, as a search must find them anywhere
        dot_dir = (disc("11-13.1") / cased("wsj0/transcrp/dots/si_et_20", upper) if "si_et_20" in rel
                   else path.parent)
        dot = dot_dir / cased(utt[:6] + "00.dot", upper)
        dot.parent.mkdir(parents=True, exist_ok=True)
        with open(dot, "a") as f:
            f.write(f"{trans} ({utt})\n")
    for d, rel, entries in INDICES.values():
        p = disc(d) / cased(rel, upper)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(";\n; index of the test corpus\n;\n" + "".join(e + "\n" for e in entries))
    for (d, rel), text in SPKRINFO.items():
        p = disc(d) / cased(rel, upper)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(";ID  Sex  Dialect\n" + text)
    return wsj0, wsj1, samples, paths


def run_prep(*args, check=False):
    return sh("python3 " + " ".join(shlex.quote(str(a)) for a in [PREP, *args]), check=check, timeout=120)


def table(path):
    return dict(line.split(" ", 1) for line in Path(path).read_text().splitlines())


@pytest.fixture(scope="module")
def lower(tmp_path_factory):
    base = tmp_path_factory.mktemp("wsj_lower")
    wsj0, wsj1, samples, paths = build_corpus(base)
    extra = base / "wsj0-train-spkrinfo.txt"
    extra.write_text(WSJ0_TRAIN_SPKRINFO)
    p = run_prep("--wsj0", wsj0, "--wsj1", wsj1, "--sets", ALL_SETS, "--spkrinfo", extra, base / "data", check=True)
    return base / "data", samples, paths, p.stderr


def test_help_names_the_ldc_corpora():
    out = run_prep("--help", check=True).stdout
    assert "LDC93S6B" in out and "LDC94S13B" in out and "Usage:" in out and "e.g.:" in out
    assert "Usage:" in sh(f"{SPH2WAV} --help").stdout


def load_prep_module():
    spec = importlib.util.spec_from_file_location("wsj_data_prep", PREP)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod   # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_normalize_transcript():
    norm = load_prep_module().normalize_transcript
    raw = (r'[<door_slam] \"DOUBLE-QUOTE it\'s *up* <the> [loud_breath] --DASH 3 .POINT 5 %PERCENT ~ . [x>] '
           r"rock 'n roll 'em \'SINGLE-QUOTE ...ELLIPSIS")
    assert norm(raw) == ['"DOUBLE-QUOTE', "IT'S", "UP", "THE", "-DASH", "3", "POINT", "5", "PERCENT", "ROCK", "'N",
                         "ROLL", "'EM", "'SINGLE-QUOTE", "...ELLIPSIS"]
    assert norm(raw, "words", "<NOISE>") == ["DOUBLE-QUOTE", "IT'S", "UP", "THE", "<NOISE>", "DASH", "3", "POINT",
                                             "5", "PERCENT", "ROCK", "'N", "ROLL", "'EM", "SINGLE-QUOTE", "ELLIPSIS"]
    assert norm("[loud_breath] ~ .") == []


def test_sets_and_tables(lower):
    data, samples, paths, log = lower
    for name, utts in SETS.items():
        d = data / name
        sh(f"utils/validate_data_dir.sh --no-feats {d}")
        assert sorted(table(d / "utt2spk")) == sorted(utts)
        assert all(spk == utt[:3] for utt, spk in table(d / "utt2spk").items())
        assert table(d / "text") == {u: EXPECTED_TEXT[u] for u in utts}
        dur = table(d / "utt2dur")
        assert sorted(dur) == sorted(utts) and all(abs(float(dur[u]) - len(samples[u]) / 16000) < 1e-4 for u in utts)
        genders = table(d / "spk2gender")
        assert sorted(genders) == sorted({u[:3] for u in utts})
        wav = table(d / "wav.scp")
        for u in utts:
            if u == "46hc0202":  # uncompressed SPHERE: its path
                assert wav[u] == str(paths[u])
            else:
                assert wav[u] == f"{SPH2WAV} {paths[u]} |"
    assert table(data / "train_si84" / "spk2gender") == {"011": "m", "01a": "f", "402": "m"}
    assert "4k0c0303" in log and "empty transcript" in log


def test_spk2gender_left_out_with_a_warning(tmp_path):
    wsj0, wsj1, _, _ = build_corpus(tmp_path)
    p = run_prep("--wsj0", wsj0, "--wsj1", wsj1, "--sets", "train_si84,test_eval92", tmp_path / "data", check=True)
    assert not (tmp_path / "data" / "train_si84" / "spk2gender").exists()
    assert "3 of 3 speakers have no gender" in p.stderr
    assert table(tmp_path / "data" / "test_eval92" / "spk2gender") == {"440": "m", "441": "f"}


def test_upper_case_layout_gives_the_same_dirs(lower, tmp_path):
    data, _, _, _ = lower
    _, _, _, paths = build_corpus(tmp_path, upper=True)
    extra = tmp_path / "wsj0-train-spkrinfo.txt"
    extra.write_text(WSJ0_TRAIN_SPKRINFO)
    run_prep("--wsj-root", tmp_path, "--sets", ALL_SETS, "--spkrinfo", extra, tmp_path / "data", check=True)
    for name in SETS:
        for f in ("text", "utt2spk", "spk2utt", "utt2dur", "spk2gender"):
            assert (tmp_path / "data" / name / f).read_text() == (data / name / f).read_text(), (name, f)
        for utt, entry in table(tmp_path / "data" / name / "wav.scp").items():
            assert str(paths[utt]) in entry and paths[utt].name == utt.upper() + ".WV1"


def test_punctuation_words_and_noise_word(tmp_path):
    wsj0, wsj1, _, _ = build_corpus(tmp_path)
    run_prep("--wsj0", wsj0, "--wsj1", wsj1, "--sets", "train_si84", "--punctuation", "words",
             "--noise-word", "<NOISE>", tmp_path / "data", check=True)
    text = table(tmp_path / "data" / "train_si84" / "text")
    assert text["011c0201"] == "THE <NOISE> COMPANY'S SHARES ROSE COMMA ANALYSTS SAID PERIOD"
    assert text["402c0201"] == "DOUBLE-QUOTE YES DASH IT IS DONE"


@needs_ffmpeg
def test_wav_scp_decodes_to_the_original_samples(lower):
    from mtlasr.audio import read_audio

    data, samples, _, _ = lower
    for name in ("train_si284", "test_dev93", "test_eval92", "test_eval93"):
        for utt, entry in table(data / name / "wav.scp").items():
            x, sr = read_audio(entry, utt)
            assert sr == 16000
            np.testing.assert_array_equal(x, samples[utt].astype(np.float32), err_msg=utt)


@needs_ffmpeg
def test_decode_to_writes_wav_files_once(tmp_path):
    import soundfile as sf

    wsj0, wsj1, samples, _ = build_corpus(tmp_path)
    out = tmp_path / "wav"
    args = ["--wsj0", wsj0, "--wsj1", wsj1, "--sets", "train_si284,test_dev93", "--decode-to", out, "--nj", "2",
            tmp_path / "data"]
    run_prep(*args, check=True)
    wav = table(tmp_path / "data" / "train_si284" / "wav.scp")
    assert wav["011c0201"] == str((out / "011" / "011c0201.wav").resolve())
    stamps = {}
    for utt, entry in wav.items():
        if utt != "46hc0202":
            x, sr = sf.read(entry, dtype="int16")
            np.testing.assert_array_equal(x, samples[utt])
            stamps[entry] = os.stat(entry).st_mtime_ns
    assert not list(out.rglob("*.tmp*"))
    run_prep(*args, check=True)
    assert {e: os.stat(e).st_mtime_ns for e in stamps} == stamps


@needs_ffmpeg
@pytest.mark.parametrize("opts", [dict(), dict(version=1, nmean=0), dict(nmean=0, blocksize=100),
                                  dict(channels=2), dict(byte_format="10"), dict(verbatim_wav_header=True),
                                  dict(shorten=False, byte_format="10")])
def test_sph2wav_is_lossless(tmp_path, opts):
    opts = dict(opts)
    ch = opts.pop("channels", 1)
    x = np.stack([signal(3), signal(4)[:len(signal(3))]], axis=1) if ch == 2 else signal(3)
    path = tmp_path / "x.wv1"
    write_sphere(path, x, byte_format=opts.pop("byte_format", "01"), **opts)
    wav = subprocess.run([str(SPH2WAV), str(path)], capture_output=True, check=True).stdout
    import io
    import soundfile as sf
    y, sr = sf.read(io.BytesIO(wav), dtype="int16")
    assert sr == 16000
    np.testing.assert_array_equal(y, x)


# ----------------------------------------------------------------------------- bad input

def expect_error(tmp_path, *args, sets="train_si284,test_dev93"):
    p = run_prep("--wsj-root", tmp_path, "--sets", sets, *args, tmp_path / "data")
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr
    return p.stderr


def test_missing_index_file(tmp_path):
    build_corpus(tmp_path)
    (tmp_path / "csr_2" / "13-34.1" / "wsj1" / "doc" / "indices" / "h1_p0.ndx").unlink()
    err = expect_error(tmp_path)
    assert "index file 13-34.1/wsj1/doc/indices/h1_p0.ndx of WSJ1 not found" in err


def test_missing_disc(tmp_path):
    build_corpus(tmp_path)
    shutil.rmtree(tmp_path / "csr_1" / "11-2.1")
    err = expect_error(tmp_path)
    assert "disc(s) not found" in err and "11-2.1 (WSJ0, 1 utterances)" in err


def test_training_utterance_without_audio(tmp_path):
    build_corpus(tmp_path)
    ndx = tmp_path / "csr_1" / "11-13.1" / "wsj0" / "doc" / "indices" / "train" / "tr_s_wv1.ndx"
    ndx.write_text(ndx.read_text() + "11_1_1:wsj0/si_tr_s/011/011c0209.wv1\n")
    err = expect_error(tmp_path)
    assert "011c0209: no 11-1.1/wsj0/si_tr_s/011/011c0209.wv1" in err and f"{ndx}:9" in err
    p = run_prep("--wsj-root", tmp_path, "--sets", "train_si84", "--allow-missing", tmp_path / "data", check=True)
    assert "011c0209" in p.stderr
    assert sorted(table(tmp_path / "data" / "train_si84" / "utt2spk")) == SETS["train_si84"]


def test_test_set_audio_missing_is_warned_with_a_count(tmp_path):
    _, _, _, paths = build_corpus(tmp_path)
    paths["4k0c0302"].unlink()
    p = run_prep("--wsj-root", tmp_path, "--sets", "test_dev93", tmp_path / "data", check=True)
    assert "test_dev93: 1 utterance(s) listed in the index files have no audio file, left out" in p.stderr
    assert sorted(table(tmp_path / "data" / "test_dev93" / "utt2spk")) == ["4k0c0301"]


def test_training_utterance_without_transcript(tmp_path):
    _, _, _, paths = build_corpus(tmp_path)
    dot = paths["01ac0201"].parent / "01ac0200.dot"
    dot.write_text("")
    err = expect_error(tmp_path)
    assert "01ac0201: not in " + str(dot) in err
    dot.unlink()
    assert "01ac0201: no .dot file 01ac0200.dot" in expect_error(tmp_path)


def test_malformed_transcript_line(tmp_path):
    _, _, _, paths = build_corpus(tmp_path)
    dot = paths["011c0201"].parent / "011c0200.dot"
    dot.write_text(dot.read_text() + "no id here\n")
    assert f"{dot}:3: expected '<transcript> (<utterance-id>)'" in expect_error(tmp_path)


def test_unknown_set(tmp_path):
    build_corpus(tmp_path)
    assert "unknown set(s) train_si999" in expect_error(tmp_path, sets="train_si999")


@needs_ffmpeg
def test_truncated_wv1_is_an_error(tmp_path):
    from mtlasr.audio import AudioError, read_audio

    path = tmp_path / "x.wv1"
    write_sphere(path, signal(1))
    path.write_bytes(path.read_bytes()[:1024 + 600])
    p = subprocess.run([str(SPH2WAV), str(path)], capture_output=True, text=True)
    assert p.returncode == 1 and str(path) in p.stderr and p.stdout == ""
    with pytest.raises(AudioError, match="x.wv1"):
        read_audio(f"{SPH2WAV} {path} |", "u1")
