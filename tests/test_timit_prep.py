"""Tests of the TIMIT recipe's local/timit_data_prep.py on the real TIMIT sample.

The LDC layout is built under tmp_path from the NLTK sample: upper-case
``TIMIT/{TRAIN,TEST}/DR<n>/<SPK>/<UTT>.{WAV,PHN,TXT,WRD}`` with every .WAV
converted to NIST SPHERE; the dev/test speakers are renamed to ids from the
real conf/dev_spk.list and conf/test_spk.list. The prep is run as a script
with the environment of path.sh, as the recipe runs it.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from conftest import RECIPE, SAMPLE  # noqa: E402
PREP = str(RECIPE / "local" / "timit_data_prep.py")
MAP = RECIPE / "conf" / "phones.60-48-39.map"

needs_sample = pytest.mark.skipif(not SAMPLE.is_dir(), reason=f"TIMIT sample not found at {SAMPLE}")
pytestmark = needs_sample

SETS = ("train", "dev", "test")
FILES = ("wav.scp", "text", "utt2spk", "spk2utt", "spk2gender")

# sample folder -> (LDC part, DR folder, speaker folder name)
DEV_RENAME = {"dr7-fblv0": "FAKS0", "dr7-madd0": "MGWT0"}    # both on conf/dev_spk.list
TEST_RENAME = {"dr8-fbcg1": "FELC0", "dr8-mbcg0": "MDAB0"}   # both on conf/test_spk.list
UNLISTED_TEST = "dr6-mbma1"                                   # put under TEST, on no list


def run_prep(*args, check=False):
    cmd = " ".join(["python3", PREP] + [f"'{a}'" for a in args])
    proc = subprocess.run(["bash", "-c", f". ./path.sh && {cmd}"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def phone_map():
    out = {}
    for line in MAP.read_text().splitlines():
        cols = line.split()
        if cols:
            out[cols[0]] = cols[1] if len(cols) == 3 else None
    return out


def fold_phn(path):
    m = phone_map()
    return [m[line.split()[2]] for line in Path(path).read_text().splitlines()
            if line.split() and m[line.split()[2]] is not None]


def read_lines(path):
    return Path(path).read_text().splitlines()


def table(path):
    return dict(line.split(" ", 1) for line in read_lines(path))


def sample_speakers():
    return sorted(d.name for d in SAMPLE.iterdir() if d.is_dir() and d.name.startswith("dr"))


def ldc_location(sample_dir):
    """(part, DR folder, speaker folder) of a sample speaker in the built LDC tree."""
    region, spk = sample_dir.split("-", 1)
    dr = region.upper()
    if sample_dir in DEV_RENAME:
        return "TEST", dr, DEV_RENAME[sample_dir]
    if sample_dir in TEST_RENAME:
        return "TEST", dr, TEST_RENAME[sample_dir]
    if sample_dir == UNLISTED_TEST:
        return "TEST", dr, spk.upper()
    return "TRAIN", dr, spk.upper()


@pytest.fixture(scope="module")
def ldc_tree(tmp_path_factory):
    """Upper-case LDC tree with SPHERE audio and the custom dev/test lists."""
    import soundfile as sf

    root = tmp_path_factory.mktemp("ldc") / "TIMIT"
    for d in sample_speakers():
        part, dr, spk = ldc_location(d)
        dst = root / part / dr / spk
        dst.mkdir(parents=True)
        for f in sorted((SAMPLE / d).iterdir()):
            out = dst / (f.stem.upper() + f.suffix.upper())
            if f.suffix == ".wav":
                data, sr = sf.read(str(f), dtype="int16")
                assert sr == 16000
                sf.write(str(out), data, 16000, format="NIST", subtype="PCM_16")
                with open(out, "rb") as fh:
                    assert fh.read(7) == b"NIST_1A", out
            else:
                shutil.copyfile(f, out)
    lists = root.parent / "lists"
    lists.mkdir()
    (lists / "dev.list").write_text("faks0\nmgwt0\n")
    (lists / "test.list").write_text("felc0\nmdab0\n")
    return root, lists / "dev.list", lists / "test.list"


def ldc_args(ldc_tree, out, *extra):
    root, dev, test = ldc_tree
    return ["--dev-spk-list", str(dev), "--test-spk-list", str(test), *extra, str(root), str(out)]


def expected_speakers():
    train = sorted(d.split("-", 1)[1] for d in sample_speakers()
                   if ldc_location(d)[0] == "TRAIN")
    return {"train": train, "dev": ["faks0", "mgwt0"], "test": ["felc0", "mdab0"]}


def test_renamed_speakers_are_on_the_real_lists():
    dev = set((RECIPE / "conf" / "dev_spk.list").read_text().split())
    test = set((RECIPE / "conf" / "test_spk.list").read_text().split())
    assert {s.lower() for s in DEV_RENAME.values()} <= dev
    assert {s.lower() for s in TEST_RENAME.values()} <= test
    assert UNLISTED_TEST.split("-")[1] not in dev | test


def check_data_dir(d, speakers, utts_per_spk, sa):
    """The Kaldi data-dir contract plus the TIMIT specifics."""
    for f in FILES:
        assert (d / f).is_file(), d / f
        lines = read_lines(d / f)
        assert lines, d / f
        keys = [line.split(" ", 1)[0] for line in lines]
        enc = [k.encode() for k in keys]
        assert enc == sorted(enc) and len(set(keys)) == len(keys), f"{d / f} not sorted/unique"
        assert [line.encode() for line in lines] == sorted(line.encode() for line in lines)
        assert all(len(line.split()) >= 2 for line in lines), d / f
    utt2spk = table(d / "utt2spk")
    assert sorted(set(utt2spk.values())) == speakers
    assert len(utt2spk) == len(speakers) * utts_per_spk
    for utt, spk in utt2spk.items():
        assert utt == utt.lower() and utt.startswith(spk + "_")
        name = utt[len(spk) + 1:]
        assert name[:2] in ("sa", "si", "sx")
        if not sa:
            assert not name.startswith("sa"), utt
    assert any(u.split("_", 1)[1].startswith("sa") for u in utt2spk) == sa
    spk2utt = {k: v.split() for k, v in table(d / "spk2utt").items()}
    assert spk2utt == {s: sorted(u for u in utt2spk if utt2spk[u] == s) for s in speakers}
    assert table(d / "spk2gender") == {s: s[0] for s in speakers}
    for f in ("wav.scp", "text"):
        assert sorted(table(d / f)) == sorted(utt2spk), d / f
    phones48 = {v for v in phone_map().values() if v is not None}
    assert len(phones48) == 48
    for utt, trans in table(d / "text").items():
        phones = trans.split()
        assert phones and set(phones) <= phones48, utt
        assert "q" not in phones and "h#" not in phones and "pau" not in phones
        assert phones[0] == "sil" and phones[-1] == "sil", utt  # h# at both ends
    for utt, path in table(d / "wav.scp").items():
        p = Path(path)
        assert p.is_absolute() and p.is_file(), path
        with open(p, "rb") as fh:
            assert fh.read(7) == b"NIST_1A", path
    return utt2spk


def test_ldc_layout(ldc_tree, tmp_path):
    out = tmp_path / "data"
    run_prep(*ldc_args(ldc_tree, out), check=True)
    exp = expected_speakers()
    assert len(exp["train"]) == 11
    for s in SETS:
        check_data_dir(out / s, exp[s], 8, sa=False)
    # The unlisted TEST speaker is in no set.
    unlisted = UNLISTED_TEST.split("-")[1]
    for s in SETS:
        assert unlisted not in table(out / s / "spk2utt")
    # Renamed speakers: audio and text come from the renamed folder.
    root = ldc_tree[0]
    wav = table(out / "test" / "wav.scp")
    assert Path(wav["felc0_si1612"]) == (root / "TEST" / "DR8" / "FELC0" / "SI1612.WAV").resolve()
    # h# -> sil, q dropped, 61 -> 48 folding, checked against the source .PHN.
    text = table(out / "test" / "text")
    assert text["felc0_si1612"].split() == fold_phn(SAMPLE / "dr8-fbcg1" / "si1612.phn")
    text = table(out / "train" / "text")
    for utt in ("fvmh0_si836", "mcpm0_sx294"):
        spk, name = utt.split("_")
        src = next(SAMPLE.glob(f"dr*-{spk}")) / f"{name}.phn"
        raw = [line.split()[2] for line in read_lines(src)]
        assert raw[0] == "h#" and raw[-1] == "h#"
        assert text[utt].split() == fold_phn(src)


def test_ldc_layout_include_sa(ldc_tree, tmp_path):
    out = tmp_path / "data"
    run_prep(*ldc_args(ldc_tree, out, "--include-sa"), check=True)
    exp = expected_speakers()
    for s in SETS:
        utt2spk = check_data_dir(out / s, exp[s], 10, sa=True)
        for spk in exp[s]:
            assert f"{spk}_sa1" in utt2spk and f"{spk}_sa2" in utt2spk


def test_lower_case_ldc_tree(ldc_tree, tmp_path):
    """timit/train/dr1/fvmh0/sa1.wav is accepted as well."""
    root = ldc_tree[0]
    low = tmp_path / "timit"
    picks = [("TRAIN", "DR1", "FVMH0"), ("TEST", "DR7", "FAKS0"), ("TEST", "DR8", "FELC0")]
    for part, dr, spk in picks:
        dst = low / part.lower() / dr.lower() / spk.lower()
        dst.mkdir(parents=True)
        for f in (root / part / dr / spk).iterdir():
            shutil.copyfile(f, dst / f.name.lower())
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "dev").write_text("faks0\n")
    (lists / "test").write_text("felc0\n")
    out = tmp_path / "data"
    run_prep("--dev-spk-list", lists / "dev", "--test-spk-list", lists / "test", low, out, check=True)
    for s, spk in zip(SETS, ("fvmh0", "faks0", "felc0")):
        check_data_dir(out / s, [spk], 8, sa=False)
        part = "train" if s == "train" else "test"
        for path in table(out / s / "wav.scp").values():
            rel = Path(path).relative_to(low.resolve())
            assert rel.parts[0] == part and rel.parts[2] == spk, path
            assert str(rel) == str(rel).lower() and rel.suffix == ".wav"


def test_missing_listed_speakers_are_warned_about(ldc_tree, tmp_path):
    """With the real lists most listed speakers are absent from this small
    LDC tree: a warning names each list and the count (as Kaldi does), and
    the sets hold the speakers that are there."""
    root, dev, test = ldc_tree
    out = tmp_path / "data"
    proc = run_prep(root, out, check=True)
    for lst, n, present in (("dev_spk.list", 50, DEV_RENAME), ("test_spk.list", 24, TEST_RENAME)):
        real = (RECIPE / "conf" / lst).resolve()
        line = next(l for l in proc.stderr.splitlines() if str(real) in l)
        assert "WARNING" in line and f"{n - len(present)} of its {n} speakers are not under" in line, line
        for spk in present.values():
            assert spk.lower() not in line  # present speakers are not named as missing
    assert sorted(set(table(out / "dev" / "utt2spk").values())) == sorted(s.lower() for s in DEV_RENAME.values())
    assert sorted(set(table(out / "test" / "utt2spk").values())) == sorted(s.lower() for s in TEST_RENAME.values())


@pytest.mark.parametrize("which", ["dev", "test"])
def test_list_without_any_present_speaker_is_an_error(ldc_tree, tmp_path, which):
    root, dev, test = ldc_tree
    nobody = tmp_path / "nobody.list"
    nobody.write_text("zzzz0\nyyyy0\n")
    out = tmp_path / "data"
    args = ["--dev-spk-list", nobody, "--test-spk-list", test] if which == "dev" else \
        ["--dev-spk-list", dev, "--test-spk-list", nobody]
    proc = run_prep(*args, root, out)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert f"{nobody}: none of its 2 speakers is under" in proc.stderr, proc.stderr
    assert not out.exists() or not any(out.iterdir())


def test_sample_layout(tmp_path):
    out = tmp_path / "data"
    proc = run_prep(SAMPLE, out, check=True)
    spk = {s: [] for s in SETS}
    for d in sample_speakers():
        n = int(d[2])
        spk["train" if n <= 6 else "dev" if n == 7 else "test"].append(d.split("-", 1)[1])
    counts = {}
    for s in SETS:
        assert len(spk[s]) == (12 if s == "train" else 2)
        utt2spk = check_data_dir_sample(out / s, sorted(spk[s]))
        counts[s] = len(utt2spk)
    assert counts == {"train": 96, "dev": 16, "test": 16}
    assert "96 utterances" in proc.stderr
    # SPHERE and RIFF audio both end up in wav.scp, as the original files.
    wav = table(out / "train" / "wav.scp")
    assert Path(wav["fvmh0_si836"]) == (SAMPLE / "dr1-fvmh0" / "si836.wav").resolve()
    assert table(out / "train" / "text")["fvmh0_si836"].split() == fold_phn(SAMPLE / "dr1-fvmh0" / "si836.phn")


def check_data_dir_sample(d, speakers):
    """check_data_dir without the SPHERE check (the sample is mostly RIFF)."""
    utt2spk = table(d / "utt2spk")
    for f in FILES:
        keys = [line.split(" ", 1)[0].encode() for line in read_lines(d / f)]
        assert keys == sorted(keys)
    assert sorted(set(utt2spk.values())) == speakers
    assert len(utt2spk) == 8 * len(speakers)
    assert all(u.startswith(s + "_") and not u.split("_", 1)[1].startswith("sa") for u, s in utt2spk.items())
    assert table(d / "spk2gender") == {s: s[0] for s in speakers}
    for path in table(d / "wav.scp").values():
        assert Path(path).is_file()
    return utt2spk


# ------------------------------------------------------------------ bad input
MINI = ("dr1-fvmh0", "dr7-fblv0", "dr8-fbcg1")  # one speaker per set


def mini_corpus(root):
    for d in MINI:
        shutil.copytree(SAMPLE / d, root / d)
    return root


def snapshot(data):
    return {p.relative_to(data): p.read_bytes() for p in sorted(data.rglob("*")) if p.is_file()}


@pytest.fixture
def good_data(tmp_path):
    """A good data root written from a mini corpus, and its snapshot."""
    data = tmp_path / "data"
    run_prep(mini_corpus(tmp_path / "good"), data, check=True)
    snap = snapshot(data)
    assert {str(k) for k in snap} >= {f"{s}/{f}" for s in SETS for f in FILES}
    return data, snap


# The bad utterance sits in the train set (processed first) or in the test
# set (processed last, after train and dev have been written).
WHERE = [pytest.param(("dr1-fvmh0", "si1466"), id="in-train"),
         pytest.param(("dr8-fbcg1", "si1612"), id="in-test")]

def assert_intact(data, snap, where):
    """The data root still holds exactly the good data dirs."""
    now = snapshot(data)
    changed = sorted(str(k) for k in snap if now.get(k) != snap[k])
    assert now == snap, f"bad utterance in {where}: changed {changed}"


@pytest.mark.parametrize("where", WHERE)
def test_missing_wav_for_phn(good_data, tmp_path, where):
    data, snap = good_data
    spk_dir, utt = where
    bad = mini_corpus(tmp_path / "bad")
    (bad / spk_dir / f"{utt}.wav").unlink()
    proc = run_prep(bad, data)
    assert proc.returncode != 0
    uttid = f"{spk_dir.split('-')[1]}_{utt}"
    assert f"utterance {uttid}" in proc.stderr, proc.stderr
    assert str(bad / spk_dir / f"{utt}.phn") in proc.stderr
    assert f"{utt}.wav" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert_intact(data, snap, where)


@pytest.mark.parametrize("where", WHERE)
def test_phone_outside_map(good_data, tmp_path, where):
    data, snap = good_data
    spk_dir, utt = where
    bad = mini_corpus(tmp_path / "bad")
    phn = bad / spk_dir / f"{utt}.phn"
    lines = read_lines(phn)
    s, e, _ = lines[2].split()
    lines[2] = f"{s} {e} zz"
    phn.write_text("\n".join(lines) + "\n")
    proc = run_prep(bad, data)
    assert proc.returncode != 0
    uttid = f"{spk_dir.split('-')[1]}_{utt}"
    assert f"utterance {uttid}" in proc.stderr, proc.stderr
    assert f"{phn}:3" in proc.stderr and "'zz'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert_intact(data, snap, where)


def test_empty_phn_is_skipped_with_warning(tmp_path):
    bad = mini_corpus(tmp_path / "bad")
    phn = bad / "dr8-fbcg1" / "si1612.phn"
    phn.write_text("0 2000 q\n")
    out = tmp_path / "data"
    proc = run_prep(bad, out)
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" in proc.stderr
    warn = [line for line in proc.stderr.splitlines() if "WARNING" in line]
    assert len(warn) == 1
    assert "fbcg1_si1612" in warn[0] and str(phn) in warn[0]
    for f in FILES[:4]:
        assert "fbcg1_si1612" not in (out / "test" / f).read_text(), f
    assert len(table(out / "test" / "utt2spk")) == 7
    assert len(table(out / "train" / "utt2spk")) == 8
