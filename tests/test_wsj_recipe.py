"""The seed 002 recipe (egs/wsj/s5) end to end on its espeak-ng demo, tiny version."""

import re
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, sh

RECIPE = ROOT / "egs" / "wsj" / "s5"
pytestmark = pytest.mark.skipif(
    not (shutil.which("espeak-ng") and shutil.which("sox") and Path("/usr/share/games/fortunes").is_dir()),
    reason="espeak-ng, sox or the fortunes are missing (utils/install_debian_packages.sh)")
SYSTEMS = ["base", "mt_in", "mt_mid", "mt_out", "al_in", "al_mid", "al_out", "semi_in", "semi_mid", "semi_out"]


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    d = tmp_path_factory.mktemp("wsj")
    for p in RECIPE.iterdir():
        if p.name not in ("data", "exp", "mfcc"):
            (d / p.name).symlink_to(p)
    sh("./run.sh --config conf/tiny.conf", d, timeout=1500)
    return d


def test_tiny_recipe_ends_with_table1_and_probe(recipe):
    table = (recipe / "exp" / "results" / "table1.md").read_text(encoding="utf-8")
    rows = [l for l in table.splitlines() if re.match(r"\| (Baseline|Mult|Adv|Semi)", l)]
    assert len(rows) == len(SYSTEMS), table
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")][1:]
        assert len(cells) == 4
        for c in cells:
            rate, paper = re.fullmatch(r"([\d.]+) \(([\d.]+)\)", c).groups()
            assert 0.0 <= float(rate) <= 200.0 and 4.0 <= float(paper) <= 11.0
    assert "Missing scores" not in table
    assert "Speaker probe per layer" in table and "| base |" in table and "| al_out |" in table
    assert (recipe / "exp" / "probe_spk_s0" / "probe.png").stat().st_size > 1000
    for sys_ in SYSTEMS:  # the test set is scored at the dev set's LM weight and word score
        d = recipe / "exp" / f"ctc_{sys_}_s0"
        for f in ("lmwt", "wip"):
            assert (d / "decode_word_dev" / f).read_text() == (d / "decode_word_test" / f).read_text()


def test_letters_lexicon_extra_data_and_staged_training(recipe):
    data = recipe / "data"
    units = [l.split()[0] for l in (data / "lang_char" / "units.txt").read_text().splitlines()]
    assert units[0] == "<blk>" and "<space>" in units and all(len(u) == 1 for u in units[1:] if u != "<space>")
    lex = (data / "lang_char" / "lexicon.txt").read_text(encoding="utf-8").splitlines()
    assert len(lex) > 1000 and all(l.split()[1:] == list(l.split()[0]) for l in lex[:200])
    # the LM text shares no sentence with the corpus
    lm = set((data / "local" / "lm_text").read_text(encoding="utf-8").splitlines())
    for s in ("train", "dev", "test"):
        said = {l.split(" ", 1)[1] for l in (data / s / "text").read_text(encoding="utf-8").splitlines()}
        assert not said & lm
    # the extra speakers: no transcripts, no overlap with the transcribed ones
    assert not (data / "train_extra" / "text").exists()
    spk = {s: {l.split()[0] for l in (data / s / "spk2utt").read_text().splitlines()}
           for s in ("train", "train_extra", "dev", "test")}
    assert len(spk["train_extra"]) == 2 and not spk["train"] & spk["train_extra"]
    log = (recipe / "exp" / "ctc_semi_in_s0" / "log" / "train.log").read_text()
    n_extra = len((data / "train_extra" / "utt2spk").read_text().splitlines())
    assert re.search(rf"train: \d+ utterances \({n_extra} untranscribed\)", log)
    # staged: the branch alone, then jointly; started from the pre-trained model
    cfg = (recipe / "exp" / "ctc_al_mid_s0" / "config.yaml").read_text()
    assert "ctc_pre_s0/final.pt" in cfg and "fork: 2" in cfg
    assert re.search(r"stages:\s*\n\s*- - aux\n\s*- 1\n\s*- - joint\n\s*- 1", cfg), cfg


def test_rerun_redoes_nothing(recipe):
    p = sh("./run.sh --config conf/tiny.conf", recipe, timeout=600)
    out = p.stdout + p.stderr
    assert "training exp/" not in out and "Stage 6: table" in out and "up to date" in out
