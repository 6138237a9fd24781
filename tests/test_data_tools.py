"""Tests for the data-dir tools utils/subset_data_dir.sh, utils/combine_data.sh
and utils/copy_data_dir.sh, on small hand-made data dirs."""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Three speakers; utterance -> (speaker, length in frames, recording).
UTTS = {
    "alice-01": ("alice", 310, "recA"),
    "alice-02": ("alice", 120, "recA"),
    "alice-03": ("alice", 450, "recB"),
    "bob-01": ("bob", 200, "recB"),
    "bob-02": ("bob", 90, "recC"),
    "carol-01": ("carol", 500, "recC"),
    "carol-02": ("carol", 150, "recD"),
    "carol-03": ("carol", 130, "recD"),
    "carol-04": ("carol", 600, "recD"),
}
SPEAKERS = ["alice", "bob", "carol"]
GENDER = {"alice": "f", "bob": "m", "carol": "f"}


def sh(script, *args, check=True):
    """Run `bash utils/SCRIPT ARGS` from the repository root."""
    res = subprocess.run(["bash", f"utils/{script}", *map(str, args)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    if check and res.returncode != 0:
        raise AssertionError(f"{script} {args} failed ({res.returncode}):\n{res.stderr}")
    return res


def lines(path):
    return path.read_text().splitlines()


def keys(path):
    return [ln.split()[0] for ln in lines(path)]


def write_table(path, rows):
    path.write_text("".join(f"{k} {v}\n" for k, v in sorted(rows.items())))


def make_data(d, segments=False, utts=UTTS, tag=""):
    """A consistent data dir of UTTS (or a sub-dict of it); tag marks the
    values, so that dirs with the same ids can differ in content."""
    d.mkdir(parents=True)
    spks = sorted({s for s, _, _ in utts.values()})
    write_table(d / "utt2spk", {u: s for u, (s, _, _) in utts.items()})
    write_table(d / "text", {u: f"words of {u}{tag}" for u in utts})
    write_table(d / "feats.scp", {u: f"raw.ark:{u}{tag}" for u in utts})
    write_table(d / "utt2num_frames", {u: n for u, (_, n, _) in utts.items()})
    write_table(d / "cmvn.scp", {s: f"cmvn.ark:{s}{tag}" for s in spks})
    write_table(d / "spk2gender", {s: GENDER[s] for s in spks})
    write_table(d / "spk2utt", {s: " ".join(sorted(u for u, v in utts.items() if v[0] == s))
                                for s in spks})
    (d / "frame_shift").write_text("0.01\n")
    if segments:
        write_table(d / "segments", {u: f"{r} 0.00 {n / 100:.2f}" for u, (_, n, r) in utts.items()})
        recos = sorted({r for _, _, r in utts.values()})
        write_table(d / "wav.scp", {r: f"/corpus/{r}.wav" for r in recos})
        write_table(d / "reco2file_and_channel", {r: f"{r} A" for r in recos})
    else:
        write_table(d / "wav.scp", {u: f"sox /corpus/{u}.flac -t wav - |" for u in utts})
    return d


@pytest.fixture
def src(tmp_path):
    return make_data(tmp_path / "src")


@pytest.fixture
def src_seg(tmp_path):
    return make_data(tmp_path / "src_seg", segments=True)


def expected_subset(src_dir, keep):
    """What a subset of src_dir to the utterances keep must hold, file by file."""
    keep = set(keep)
    spks = {UTTS[u][0] for u in keep}
    segments = (src_dir / "segments").exists()
    recos = {UTTS[u][2] for u in keep}
    out = {}
    for path in sorted(src_dir.iterdir()):
        name = path.name
        if name == "spk2utt":
            out[name] = [f"{s} " + " ".join(sorted(u for u in keep if UTTS[u][0] == s))
                         for s in sorted(spks)]
        elif name == "frame_shift":
            out[name] = lines(path)
        elif name in ("cmvn.scp", "spk2gender"):
            out[name] = [ln for ln in lines(path) if ln.split()[0] in spks]
        elif segments and name in ("wav.scp", "reco2file_and_channel"):
            out[name] = [ln for ln in lines(path) if ln.split()[0] in recos]
        else:
            out[name] = [ln for ln in lines(path) if ln.split()[0] in keep]
    return out


def assert_data(dest, expected):
    assert sorted(p.name for p in dest.iterdir()) == sorted(expected)
    for name, want in expected.items():
        assert lines(dest / name) == want, name
    assert "Successfully validated" in sh("validate_data_dir.sh", dest).stdout


def assert_nothing_written(parent, name):
    """No dest dir and no temporary folder of it were left behind."""
    assert not (parent / name).exists()
    assert not [p.name for p in parent.iterdir() if p.name.startswith(f".{name}.")]


# ------------------------------------------------------------------ generic

@pytest.mark.parametrize("script", ["subset_data_dir.sh", "combine_data.sh", "copy_data_dir.sh"])
def test_help_and_usage(script):
    res = sh(script, "--help", check=False)
    assert res.returncode == 0 and "Usage:" in res.stderr and "e.g.:" in res.stderr
    res = sh(script, check=False)
    assert res.returncode == 1 and "Usage:" in res.stderr and "e.g.:" in res.stderr
    assert os.access(ROOT / "utils" / script, os.X_OK)


# ------------------------------------------------------------------- subset

@pytest.mark.parametrize("opts, num, keep", [
    (["--first", "4"], [], ["alice-01", "alice-02", "alice-03", "bob-01"]),
    (["--first"], ["4"], ["alice-01", "alice-02", "alice-03", "bob-01"]),  # Kaldi's form
    (["--last", "3"], [], ["carol-02", "carol-03", "carol-04"]),
    (["--per-spk", "2"], [], ["alice-01", "alice-02", "bob-01", "bob-02", "carol-01", "carol-02"]),
    (["--shortest"], ["4"], ["alice-02", "bob-02", "carol-02", "carol-03"]),
    (["--shortest=4"], [], ["alice-02", "bob-02", "carol-02", "carol-03"]),
])
def test_subset_modes(tmp_path, src, opts, num, keep):
    sh("subset_data_dir.sh", *opts, src, *num, tmp_path / "out")
    assert_data(tmp_path / "out", expected_subset(src, keep))


def test_subset_per_spk_keeps_small_speakers_whole(tmp_path, src):
    res = sh("subset_data_dir.sh", "--per-spk", "3", src, tmp_path / "out")
    assert "1 speakers have fewer than 3" in res.stderr  # bob has 2
    keep = ["alice-01", "alice-02", "alice-03", "bob-01", "bob-02",
            "carol-01", "carol-02", "carol-03"]
    assert_data(tmp_path / "out", expected_subset(src, keep))
    res = sh("subset_data_dir.sh", "--per-spk", "5", src, tmp_path / "out2", check=False)
    assert res.returncode == 1 and "5 utterances per speaker" in res.stderr and "only 4" in res.stderr
    assert_nothing_written(tmp_path, "out2")


def test_subset_shortest_lengths(tmp_path, src):
    # utt2dur is used when there is no utt2num_frames
    (src / "utt2dur").write_text("".join(f"{u} {n / 100}\n" for u, (_, n, _) in UTTS.items()))
    (src / "utt2num_frames").unlink()
    sh("subset_data_dir.sh", "--shortest", "2", src, tmp_path / "out")
    assert keys(tmp_path / "out" / "utt2spk") == ["alice-02", "bob-02"]
    (src / "utt2dur").unlink()
    res = sh("subset_data_dir.sh", "--shortest", "2", src, tmp_path / "out2", check=False)
    assert res.returncode == 1
    assert "utt2num_frames" in res.stderr and "utt2dur" in res.stderr
    assert_nothing_written(tmp_path, "out2")


@pytest.mark.parametrize("opt, ids, warning, keep", [
    ("--utt-list", "nobody-01 x\ncarol-03 with more fields\n\nbob-01\nghost-07\nbob-01\n",
     ["2 of the 4 ids", "utterances", "nobody-01"], ["bob-01", "carol-03"]),
    ("--spk-list", "carol\nzed\nalice\n", ["1 of the 3 ids", "speakers", "zed"],
     [u for u, (s, _, _) in UTTS.items() if s in ("alice", "carol")]),
])
def test_subset_lists(tmp_path, src, opt, ids, warning, keep):
    id_list = tmp_path / "ids"
    id_list.write_text(ids)
    res = sh("subset_data_dir.sh", opt, id_list, src, tmp_path / "out")
    for w in warning:
        assert w in res.stderr, (w, res.stderr)
    assert_data(tmp_path / "out", expected_subset(src, keep))
    # whole speakers kept: cmvn.scp is still right, no warning
    assert ("stale" in res.stderr) == (opt == "--utt-list")
    id_list.write_text("ghost-01\nghost-02\n")
    res = sh("subset_data_dir.sh", opt, id_list, src, tmp_path / "out2", check=False)
    assert res.returncode == 1 and "none of the 2 ids" in res.stderr and str(id_list) in res.stderr
    assert_nothing_written(tmp_path, "out2")


def test_subset_random_seed(tmp_path, src):
    def subset(name, *opts):
        sh("subset_data_dir.sh", *opts, src, 4, tmp_path / name)
        return keys(tmp_path / name / "utt2spk")

    first = subset("a")
    assert len(first) == 4 and set(first) <= set(UTTS)
    assert_data(tmp_path / "a", expected_subset(src, first))
    assert subset("b", "--seed", "0") == first       # 0 is the default; same seed, same subset
    others = [subset("s1", "--seed", "1"), subset("s2", "--seed=2")]
    assert any(o != first for o in others)           # 126 subsets: differing is near certain
    # the source's line order does not matter
    rows = lines(src / "utt2spk")
    (src / "utt2spk").write_text("\n".join(reversed(rows)) + "\n")
    assert subset("c") == first
    # for one seed a smaller subset is part of a larger one
    sh("subset_data_dir.sh", src, 6, tmp_path / "six")
    assert set(first) <= set(keys(tmp_path / "six" / "utt2spk"))


def test_subset_segments(tmp_path, src_seg):
    keep = ["alice-01", "alice-02", "bob-02"]  # recordings recA, recC
    ulist = tmp_path / "ulist"
    ulist.write_text("\n".join(keep) + "\n")
    sh("subset_data_dir.sh", "--utt-list", ulist, src_seg, tmp_path / "out")
    exp = expected_subset(src_seg, keep)
    assert exp["wav.scp"] == ["recA /corpus/recA.wav", "recC /corpus/recC.wav"]
    assert exp["reco2file_and_channel"] == ["recA recA A", "recC recC A"]
    assert_data(tmp_path / "out", exp)


def test_subset_cmvn_warning(tmp_path, src):
    res = sh("subset_data_dir.sh", "--first", "4", src, tmp_path / "out")
    # alice kept whole, bob lost one utterance, carol dropped
    assert "1 kept speakers lost some" in res.stderr and "bob" in res.stderr
    assert "cmvn.scp" in res.stderr and "recompute" in res.stderr
    assert keys(tmp_path / "out" / "cmvn.scp") == ["alice", "bob"]


@pytest.mark.parametrize("args, words", [
    (["--first", "10", "{src}", "{dest}"], ["10 utterances", "only 9"]),
    (["{src}", "12", "{dest}"], ["12 utterances", "only 9"]),
    (["--first", "2", "--last", "2", "{src}", "{dest}"], ["one selection mode"]),
    (["--first", "2", "{src}", "3", "{dest}"], ["given twice"]),
    (["--utt-list", "{src}/utt2spk", "{src}", "3", "{dest}"], ["no <num-utt>"]),
    (["{src}", "0", "{dest}"], ["positive integer"]),
    (["--seed", "-1", "{src}", "2", "{dest}"], ["--seed"]),
    (["--bogus", "{src}", "2", "{dest}"], ["unknown option --bogus"]),
    (["{src}", "2", "{src}"], ["is the source"]),
    (["{tmp}/nothere", "2", "{dest}"], ["nothere/utt2spk"]),
])
def test_subset_errors(tmp_path, src, args, words):
    before = {p.name: p.read_text() for p in src.iterdir()}
    args = [a.format(src=src, dest=tmp_path / "out", tmp=tmp_path) for a in args]
    res = sh("subset_data_dir.sh", *args, check=False)
    assert res.returncode == 1
    for w in words:
        assert w in res.stderr, (w, res.stderr)
    assert_nothing_written(tmp_path, "out")
    assert {p.name: p.read_text() for p in src.iterdir()} == before  # source untouched


def test_subset_replaces_dest_only_on_success(tmp_path, src):
    dest = tmp_path / "out"
    sh("subset_data_dir.sh", "--first", "2", src, dest)
    (dest / "stale_file").write_text("from an earlier run\n")
    old = {p.name: p.read_text() for p in dest.iterdir()}
    (src / "utt2num_frames").unlink()
    res = sh("subset_data_dir.sh", "--shortest", "3", src, dest, check=False)
    assert res.returncode == 1
    assert {p.name: p.read_text() for p in dest.iterdir()} == old  # untouched
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]
    sh("subset_data_dir.sh", "--last", "1", src, dest)
    assert not (dest / "stale_file").exists()  # replaced as a whole
    assert keys(dest / "utt2spk") == ["carol-04"]
    # a folder that is not a data dir is never replaced
    other = tmp_path / "notdata"
    other.mkdir()
    (other / "precious").write_text("x\n")
    res = sh("subset_data_dir.sh", "--last", "1", src, other, check=False)
    assert res.returncode == 1 and "not a data dir" in res.stderr
    assert (other / "precious").exists()


def test_subset_invalid_result_is_not_written(tmp_path, src):
    (src / "text").write_text("".join(ln + "\n" for ln in lines(src / "text") if "bob-01" not in ln))
    res = sh("subset_data_dir.sh", "--first", "5", src, tmp_path / "out", check=False)
    assert res.returncode == 1 and "bob-01" in res.stderr and "not written" in res.stderr
    assert_nothing_written(tmp_path, "out")


# ------------------------------------------------------------------ combine

def test_combine(tmp_path):
    part1 = make_data(tmp_path / "p1", utts={u: v for u, v in UTTS.items() if v[0] != "carol"})
    part2 = make_data(tmp_path / "p2", utts={u: v for u, v in UTTS.items() if v[0] != "alice"})
    whole = make_data(tmp_path / "whole")
    res = sh("combine_data.sh", tmp_path / "all", part1, part2)
    assert "2 utterances occur in more than one source" in res.stderr  # bob's, identical
    assert_data(tmp_path / "all", {p.name: lines(p) for p in whole.iterdir()})
    assert not (tmp_path / "all" / ".backup").exists()


def test_combine_clash(tmp_path):
    a = make_data(tmp_path / "a", utts={u: v for u, v in UTTS.items() if v[0] == "bob"})
    b = make_data(tmp_path / "b", utts={u: v for u, v in UTTS.items() if u == "bob-02"}, tag="X")
    (b / "cmvn.scp").write_text((a / "cmvn.scp").read_text())  # only bob-02's lines clash
    res = sh("combine_data.sh", tmp_path / "all", a, b, check=False)
    assert res.returncode == 1
    assert "bob-02" in res.stderr and f"{a}/" in res.stderr and f"{b}/" in res.stderr
    assert_nothing_written(tmp_path, "all")
    # a speaker whose per-speaker lines differ between two sources
    c = make_data(tmp_path / "c", utts={u: v for u, v in UTTS.items() if u == "bob-01"})
    d = make_data(tmp_path / "d", utts={u: v for u, v in UTTS.items() if u == "bob-02"}, tag="Y")
    for f in ("text", "feats.scp"):  # utterances differ; only cmvn.scp clashes
        (d / f).write_text((d / f).read_text().replace("Y", ""))
    res = sh("combine_data.sh", tmp_path / "all", c, d, check=False)
    assert res.returncode == 1
    assert "speaker bob" in res.stderr and f"{c}/cmvn.scp" in res.stderr and f"{d}/cmvn.scp" in res.stderr
    assert_nothing_written(tmp_path, "all")


def test_combine_file_in_some_sources(tmp_path):
    a = make_data(tmp_path / "a", utts={u: v for u, v in UTTS.items() if v[0] == "alice"})
    b = make_data(tmp_path / "b", utts={u: v for u, v in UTTS.items() if v[0] == "bob"})
    (b / "utt2lang").write_text("bob-01 en\nbob-02 en\n")
    (a / "spk2gender").unlink()
    res = sh("combine_data.sh", tmp_path / "all", a, b)
    assert "utt2lang is missing from 1 of the 2 sources" in res.stderr and str(a) in res.stderr
    assert "spk2gender is missing" in res.stderr
    out = tmp_path / "all"
    assert not (out / "utt2lang").exists() and not (out / "spk2gender").exists()
    assert keys(out / "utt2spk") == ["alice-01", "alice-02", "alice-03", "bob-01", "bob-02"]
    assert lines(out / "spk2utt") == ["alice alice-01 alice-02 alice-03", "bob bob-01 bob-02"]


def test_combine_gaps_fixed_or_fatal(tmp_path):
    a = make_data(tmp_path / "a", utts={u: v for u, v in UTTS.items() if v[0] == "alice"})
    b = make_data(tmp_path / "b", utts={u: v for u, v in UTTS.items() if v[0] == "bob"})
    (b / "feats.scp").write_text("bob-02 raw.ark:bob-02\n")  # bob-01 has no features
    res = sh("combine_data.sh", "--skip-fix", "true", tmp_path / "all", a, b, check=False)
    assert res.returncode == 1 and "bob-01" in res.stderr
    assert_nothing_written(tmp_path, "all")
    res = sh("combine_data.sh", tmp_path / "all", a, b)
    assert "removed 1 utterances" in res.stderr
    assert "bob-01" not in keys(tmp_path / "all" / "utt2spk")
    assert lines(tmp_path / "all" / ".backup" / "removed_utts") == ["bob-01"]
    sh("validate_data_dir.sh", tmp_path / "all")


def test_combine_mixed_segments(tmp_path):
    seg = make_data(tmp_path / "seg", segments=True,
                    utts={u: v for u, v in UTTS.items() if v[0] == "alice"})
    flat = make_data(tmp_path / "flat", utts={u: v for u, v in UTTS.items() if v[0] == "bob"})
    (flat / "reco2file_and_channel").write_text("bob-01 bob-01 A\nbob-02 bob-02 A\n")
    res = sh("combine_data.sh", tmp_path / "all", seg, flat, check=False)
    assert res.returncode == 1 and f"{flat} has neither segments nor utt2dur" in res.stderr
    assert_nothing_written(tmp_path, "all")
    (flat / "utt2dur").write_text("bob-01 2.0\nbob-02 0.9\n")
    sh("combine_data.sh", tmp_path / "all", seg, flat)
    out = tmp_path / "all"
    assert lines(out / "segments") == [
        "alice-01 recA 0.00 3.10", "alice-02 recA 0.00 1.20", "alice-03 recB 0.00 4.50",
        "bob-01 bob-01 0 2.0", "bob-02 bob-02 0 0.9"]
    assert keys(out / "wav.scp") == ["bob-01", "bob-02", "recA", "recB"]
    assert keys(out / "reco2file_and_channel") == ["bob-01", "bob-02", "recA", "recB"]
    assert not (out / "utt2dur").exists()  # only in one source


# --------------------------------------------------------------------- copy

def renamed(src_dir, up, sp):
    """What copying src_dir with utterance prefix up and speaker prefix sp gives."""
    segments = (src_dir / "segments").exists()
    out = {}
    for path in src_dir.iterdir():
        rows = [ln.split(" ", 1) for ln in lines(path)]
        name = path.name
        if name == "utt2spk":
            out[name] = [f"{up}{k} {sp}{v}" for k, v in rows]
        elif name == "spk2utt":
            out[name] = [f"{sp}{k} " + " ".join(up + u for u in v.split()) for k, v in rows]
        elif name in ("cmvn.scp", "spk2gender"):
            out[name] = [f"{sp}{k} {v}" for k, v in rows]
        elif name == "frame_shift" or (segments and name in ("wav.scp", "reco2file_and_channel")):
            out[name] = lines(path)
        else:
            out[name] = [f"{up}{k} {v}" for k, v in rows]
    return out


@pytest.mark.parametrize("segments", [False, True])
def test_copy_with_prefixes(tmp_path, segments):
    src_dir = make_data(tmp_path / "src", segments=segments)
    sh("copy_data_dir.sh", "--utt-prefix", "sp1.1-", "--spk-prefix=sp1.1-", src_dir, tmp_path / "out")
    exp = renamed(src_dir, "sp1.1-", "sp1.1-")
    assert exp["utt2spk"][0] == "sp1.1-alice-01 sp1.1-alice"
    if segments:
        assert exp["segments"][0] == "sp1.1-alice-01 recA 0.00 3.10"
        assert exp["wav.scp"][0] == "recA /corpus/recA.wav"
    else:
        assert exp["wav.scp"][0] == "sp1.1-alice-01 sox /corpus/alice-01.flac -t wav - |"
    assert_data(tmp_path / "out", exp)
    sh("copy_data_dir.sh", src_dir, tmp_path / "plain")  # no renaming: an exact copy
    assert_data(tmp_path / "plain", {p.name: lines(p) for p in src_dir.iterdir()})


def test_copy_suffix_resorts(tmp_path, src):
    sh("copy_data_dir.sh", "--utt-suffix", "-b", src, tmp_path / "out")
    assert keys(tmp_path / "out" / "text")[:2] == ["alice-01-b", "alice-02-b"]
    assert lines(tmp_path / "out" / "spk2utt")[1] == "bob bob-01-b bob-02-b"
    sh("validate_data_dir.sh", tmp_path / "out")


@pytest.mark.parametrize("opts, words", [
    (["--utt-prefix", "x-"], ["alice", "x-alice-01", "prefix"]),
    (["--spk-suffix", "-z"], ["alice-z", "alice-01"]),
    (["--utt-prefix", "a b"], ["white space"]),
])
def test_copy_prefix_rule(tmp_path, src, opts, words):
    res = sh("copy_data_dir.sh", *opts, src, tmp_path / "out", check=False)
    assert res.returncode == 1
    for w in words:
        assert w in res.stderr, (w, res.stderr)
    assert_nothing_written(tmp_path, "out")


def test_copy_and_combine_make_corpus_larger(tmp_path, src):
    copies = []
    for n in (1, 2, 3):
        copies.append(tmp_path / f"rep{n}")
        sh("copy_data_dir.sh", "--utt-prefix", f"rep{n}-", "--spk-prefix", f"rep{n}-", src, copies[-1])
    sh("combine_data.sh", tmp_path / "x3", *copies)
    out = tmp_path / "x3"
    assert len(keys(out / "utt2spk")) == 3 * len(UTTS)
    assert len(keys(out / "cmvn.scp")) == 9
    assert keys(out / "spk2utt")[:3] == ["rep1-alice", "rep1-bob", "rep1-carol"]
    sh("validate_data_dir.sh", out)
    res = sh("copy_data_dir.sh", src, src / "..", check=False)  # dest = parent of src
    assert res.returncode == 1 and "inside" in res.stderr
