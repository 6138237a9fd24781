"""Tests of egs/multiling_espeak/s5/local/make_espeak_corpus.py (seed 004).

The text functions are tested on strings; the corpus builds run the script
as a program on a small fortunes tree made under tmp_path (four languages,
a few entries each, with junk the filters must drop) and, where the Debian
fortunes packages are installed, once on the real ones. Sizes are tiny (one
round of 3-4 speakers per language), so the file runs in well under a
minute on 2 cores. Skipped without espeak-ng or sox.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from conftest import ROOT

SCRIPT = ROOT / "egs" / "multiling_espeak" / "s5" / "local" / "make_espeak_corpus.py"
SETS = ("train", "dev", "test")
FILES = ("wav.scp", "text", "text.words", "utt2spk", "spk2utt", "utt2lang", "spk2gender", "utt2dur")
REAL_FORTUNES = Path("/usr/share/games/fortunes")

needs_tools = pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None,
                                 reason="espeak-ng or sox not installed (Debian packages espeak-ng, sox)")


def load_module():
    spec = importlib.util.spec_from_file_location("make_espeak_corpus", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


m = load_module()

ENTRIES = {
    "": ["The cat sat quietly on the warm mat.  It was a very lazy afternoon.",
         "Never trust a computer you cannot throw out of a window.\n\t\t-- Steve Wozniak",
         "Call 555 1234 now!", "See http://example.com for more.", "Write to me at joe@example.com please.",
         "Good judgement comes from experience, and experience comes from bad judgement.",
         "Why do birds suddenly appear every time you are near?", "Some days it is not worth chewing through "
         "the restraints.", "The early bird gets the worm, but the second mouse gets the cheese.",
         "A clean desk is a sign of a sick mind.", "He who laughs last thinks slowest."],
    "de": ["Der Hund schläft ruhig unter dem großen Baum.", "Wer nicht wagt, der nicht gewinnt.",
           "Morgenstund hat Gold im Mund.", "Die Katze läuft schnell über die Straße.", "Ich habe 3 Äpfel.",
           "Ein guter Freund ist besser als viel Geld.", "Das Wetter ist heute wirklich schön."],
    "es": ["El perro duerme tranquilo bajo el árbol grande.", "¿Qué hora es en tu casa?",
           "Más vale tarde que nunca.", "La niña come una manzana roja.", "Tengo 2 gatos.",
           "El que madruga encuentra el camino libre.", "Mañana será otro día mejor."],
    "it": ["E' vero che la citta' e' molto bella.", "Il cane dorme tranquillo sotto il grande albero.",
           "Chi dorme non piglia pesci.", "La bambina mangia una mela rossa.", "Ho 4 gatti.",
           "Meglio tardi che mai, dice sempre mia nonna.", "Domani sara' un giorno migliore."],
}


def make_fortunes(root: Path, langs=("", "de", "es", "it")) -> Path:
    """A fortunes tree like Debian's: English files in the root, de/ es/ it/
    folders, .dat files and .u8 links to skip, an off/ folder never read."""
    for sub in langs:
        d = root / sub if sub else root
        d.mkdir(parents=True, exist_ok=True)
        (d / "sayings").write_text("\n%\n".join(ENTRIES[sub]) + "\n", encoding="utf-8")
        (d / "sayings.dat").write_bytes(b"\x00\x01binary")
        os.symlink("sayings", d / "sayings.u8")
    (root / "off").mkdir(exist_ok=True)
    (root / "off" / "rude").write_text("This sentence must never be read aloud here.\n")
    return root


def run(*args, env=None, check=False):
    full_env = dict(os.environ, LC_ALL="C", PYTHONUNBUFFERED="1")
    full_env.update(env or {})
    p = subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                       env=full_env, timeout=120)
    if check:
        assert p.returncode == 0, p.stderr[-3000:]
    return p


def tiny(out, data, fortunes, *extra):
    return ["--out-dir", out, "--data-dir", data, "--fortunes-root", fortunes, "--hours", "0.002",
            "--num-speakers", "4", "--dev-speakers", "1", "--test-speakers", "1", *extra]


def read(path):
    return dict(line.split(maxsplit=1) for line in Path(path).read_text(encoding="utf-8").splitlines())


# ---------------------------------------------------------------- text functions

def test_sentences_are_split_filtered_and_normalised():
    assert m.split_sentences("Hello there, Mr. Smith.  How are you?  Fine.") == [
        "Hello there, Mr. Smith.", "How are you?", "Fine."]
    assert m.keep_sentence("Why do birds suddenly appear?", "en")
    assert not m.keep_sentence("Hello there, Mr. Smith.", "en")      # abbreviation
    assert not m.keep_sentence("Call 555 now, please.", "en")         # digits
    assert not m.keep_sentence("See www.example.com for more.", "en")  # URL
    assert not m.keep_sentence("The IBM machine is slow.", "en")      # all-caps word
    assert not m.keep_sentence("Too short.", "en")                    # 2 words
    assert not m.keep_sentence(" ".join(["word"] * 21) + ".", "en")   # 21 words
    assert not m.keep_sentence("Der Hund schläft gut.", "en")         # not English letters
    assert m.keep_sentence("Der Hund schläft gut.", "de")
    assert m.keep_sentence("¿Qué hora es ahora?", "es")
    assert m.normalise_words("Don't  stop-believing, \"l'altra\" -- OK?") == [
        "don't", "stop", "believing", "l'altra", "ok"]
    assert m.italian_accents("E' vero, la citta' e' bella; l'altra no.") == "È vero, la città è bella; l'altra no."


def test_ipa_to_phones_strips_marks_and_flags_bad_output():
    phones, drop = m.ipa_to_phones("h ə l ˈoʊ  w ˈɜː l d\nð ɪ s")
    assert (phones, drop) == (["h", "ə", "l", "oʊ", "w", "ɜː", "l", "d", "ð", "ɪ", "s"], "")
    assert m.ipa_to_phones("r ˈo ss o  t\u0361ʃ ː") == (["r", "o", "sː", "o", "tʃː"], "")
    assert m.ipa_to_phones("(en) ð ɪ s (de)  ˈiː s")[1] == "switch"
    assert m.ipa_to_phones("k ˈ?? ts")[1] == "no-ipa"
    assert m.ipa_to_phones("ˌa n 1 aɪ n")[1] == "no-ipa"


def test_speakers_are_distinct_and_split():
    spk = m.make_speakers(20, 3, 3)
    assert [s.id for s in spk] == [f"s{i:02d}" for i in range(1, 21)]
    assert len({(s.variant, s.pitch, s.speed) for s in m.make_speakers(m.MAX_SPEAKERS, 3, 3)}) == m.MAX_SPEAKERS
    assert [s.set for s in spk].count("dev") == 3 and [s.set for s in spk[-3:]] == ["test"] * 3
    assert {s.gender for s in spk[-6:]} == {"m", "f"}
    bad = {"whisper", "whisperf", "croak", "Demonic", "announcer"}
    assert not any(v in bad or v.startswith(("klatt", "robosoft")) for v, _ in m.VARIANTS)


def test_fortune_files_skip_links_dat_and_subfolders(tmp_path):
    root = make_fortunes(tmp_path / "f")
    assert m.fortune_files(root, "en") == [root / "sayings"]
    assert m.fortune_files(root, "de") == [root / "de" / "sayings"]
    sents = m.load_sentences(root, "en", 0)
    assert "The cat sat quietly on the warm mat." in sents
    assert not any(w in s for s in sents for w in ("555", "http", "@", "Wozniak", "aloud"))
    assert sents == m.load_sentences(root, "en", 0) != m.load_sentences(root, "en", 1)
    assert "È vero che la città è molto bella." in m.load_sentences(root, "it", 0)


# ---------------------------------------------------------------- the program

def test_help_and_bad_options(tmp_path):
    p = run("--help", check=True)
    assert "Usage:" in p.stdout and "e.g.:" in p.stdout and "--languages" in p.stdout
    p = run("--languages", "en,fr")
    assert p.returncode == 2 and "fr" in p.stderr and "supported: en, de, es, it" in p.stderr
    root = make_fortunes(tmp_path / "f", langs=("", "de", "es"))
    p = run(*tiny(tmp_path / "o", tmp_path / "d", root))
    assert p.returncode == 1 and f"{root / 'it'}: no such directory" in p.stderr and "fortunes-it" in p.stderr
    p = run(*tiny(tmp_path / "o", tmp_path / "d", root, "--languages", "en", "--dev-speakers", "3"))
    assert p.returncode == 1 and "--dev-speakers" in p.stderr
    assert not (tmp_path / "o").exists() and not (tmp_path / "d").exists()


@needs_tools
def test_espeak_failure_names_utterance_and_command(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    real = shutil.which("espeak-ng")
    (fake / "espeak-ng").write_text(f'#!/bin/sh\n[ "$1" = --version ] && exec {real} --version\n'
                                    'echo "espeak-ng: out of cheese" >&2; exit 3\n')
    (fake / "espeak-ng").chmod(0o755)
    root = make_fortunes(tmp_path / "f")
    p = run(*tiny(tmp_path / "o", tmp_path / "d", root, "--languages", "de"),
            env={"PATH": f"{fake}:{os.environ['PATH']}"})
    assert p.returncode == 1
    err = [line for line in p.stderr.splitlines() if "ERROR" in line]
    assert len(err) == 1 and "utterance s0" in err[0] and "_de_" in err[0], p.stderr
    assert "espeak-ng -v de+" in err[0] and "exit 3" in err[0] and "out of cheese" in err[0]
    assert "Traceback" not in p.stderr
    assert not any(tmp_path.glob("o*")) and not (tmp_path / "d").exists()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A tiny corpus from the made-up fortunes: 4 speakers x 4 languages."""
    tmp = tmp_path_factory.mktemp("espeak")
    root = make_fortunes(tmp / "fortunes")
    args = tiny(tmp / "out", tmp / "data", root, "--seed", "3")
    p = run(*args)
    if shutil.which("espeak-ng") and shutil.which("sox"):
        assert p.returncode == 0, p.stderr[-3000:]
    return tmp, args, p


@needs_tools
def test_tiny_corpus_is_a_valid_kaldi_corpus(corpus):
    tmp, _, p = corpus
    assert "synthesised 16/" in p.stderr and "real-time factor" in p.stderr
    spk_sets, spk_langs = {}, {}
    for s in SETS:
        d = tmp / "data" / s
        assert sorted(os.listdir(d)) == sorted(FILES)
        v = subprocess.run(["bash", str(ROOT / "utils" / "validate_data_dir.sh"), "--no-feats", str(d)],
                           capture_output=True, text=True, env=dict(os.environ, LC_ALL="C"))
        assert v.returncode == 0, v.stderr
        tables = {f: read(d / f) for f in FILES}
        keys = list(tables["utt2spk"])
        assert keys == sorted(keys, key=str.encode) and all(set(tables[f]) == set(keys) for f in FILES
                                                             if f.startswith(("utt2", "text", "wav")))
        for utt, spk in tables["utt2spk"].items():
            spk_sets.setdefault(spk, set()).add(s)
            lang = tables["utt2lang"][utt]
            assert utt.startswith(f"{spk}_{lang}_")
            spk_langs.setdefault(spk, set()).add(lang)
            wav = Path(tables["wav.scp"][utt])
            assert wav.is_absolute() and wav == tmp.resolve() / "out" / "wav" / spk / f"{utt}.wav"
            with wave.open(str(wav)) as w:
                assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
                assert abs(w.getnframes() / 16000 - float(tables["utt2dur"][utt])) < 1e-4
            phones = tables["text"][utt].split()
            assert phones and not any(c in "".join(phones) for c in "ˈˌ|‖()?0123456789")
            assert tables["text.words"][utt] == tables["text.words"][utt].lower()
        assert set(tables["spk2gender"].values()) <= {"m", "f"}
    assert spk_sets == {"s01": {"train"}, "s02": {"train"}, "s03": {"dev"}, "s04": {"test"}}
    assert all(langs == {"en", "de", "es", "it"} for langs in spk_langs.values())
    said = {" ".join(m.normalise_words(x)) for lang in ("en", "de", "es", "it")
            for x in m.load_sentences(tmp / "fortunes", lang, 3)}
    assert all(set(read(tmp / "data" / s / "text.words").values()) <= said for s in SETS)
    # lm_text.<lang>: the language's usable sentences that the corpus did not use
    used = {v for s in SETS for v in read(tmp / "data" / s / "text.words").values()}
    for lang in ("en", "de", "es", "it"):
        lm = (tmp / "out" / f"lm_text.{lang}").read_text(encoding="utf-8").splitlines()
        usable = [" ".join(m.normalise_words(x)) for x in m.load_sentences(tmp / "fortunes", lang, 3)]
        assert lm and lm == usable[len(usable) - len(lm):] and not set(lm) & used
    inventory = (tmp / "out" / "phone_inventory.txt").read_text(encoding="utf-8").splitlines()
    assert inventory[0] == "#phone en de es it" and all(len(x.split()) == 5 for x in inventory[1:])
    summary = (tmp / "out" / "summary").read_text()
    assert "16 utterances" in summary and "real-time factor" in summary and "shared by all" in summary
    assert not any(tmp.glob("out.tmp*")) and not (tmp / "out" / "raw").exists()


@needs_tools
def test_rerun_does_nothing_and_rebuild_is_byte_identical(corpus):
    tmp, args, _ = corpus
    data, out = tmp / "data", tmp / "out"
    stamps = {f: f.stat().st_mtime_ns for f in [*data.rglob("*"), *out.rglob("*")] if f.is_file()}
    p = run(*args, check=True)
    assert "nothing to do" in p.stderr and "synthesised" not in p.stderr
    assert stamps == {f: f.stat().st_mtime_ns for f in [*data.rglob("*"), *out.rglob("*")] if f.is_file()}
    # The same options from scratch, with another --nj: the same bytes.
    shutil.move(data, tmp / "data.first")
    shutil.move(out, tmp / "out.first")
    run(*args, "--nj", "1", check=True)
    sys.path.insert(0, str(ROOT / "steps" / "libs"))
    from mtlasr.datadir import same_tree
    assert same_tree(data, tmp / "data.first")
    assert same_tree(out / "wav", tmp / "out.first" / "wav")
    for f in ("phone_inventory.txt", "speakers.txt", "lm_text.en"):
        assert (out / f).read_bytes() == (tmp / "out.first" / f).read_bytes()
    # Another seed: other sentences.
    run(*args[:-2], "--seed", "4", check=True)
    assert read(data / "train" / "text.words") != read(tmp / "data.first" / "train" / "text.words")


@needs_tools
@pytest.mark.skipif(not all((REAL_FORTUNES / d).is_dir() for d in ("de", "es", "it")),
                    reason="Debian fortunes, fortunes-de, fortunes-es, fortunes-it not installed")
def test_real_fortunes_tiny_corpus(tmp_path):
    p = run("--out-dir", tmp_path / "out", "--data-dir", tmp_path / "data", "--hours", "0.002",
            "--num-speakers", "3", "--dev-speakers", "1", "--test-speakers", "1", check=True)
    summary = (tmp_path / "out" / "summary").read_text()
    assert "12 utterances" in summary, summary
    inv = [x.split() for x in (tmp_path / "out" / "phone_inventory.txt").read_text().splitlines()[1:]]
    shared = [x[0] for x in inv if all(int(c) > 0 for c in x[1:])]
    assert len(shared) >= 5 and {"m", "n", "t"} <= set(shared), summary
    assert "usable sentences: en " in p.stderr
