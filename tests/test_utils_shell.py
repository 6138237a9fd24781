"""Tests for the shell utilities in utils/ (option parsing, job runners and
data-directory tools)."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UTILS = ROOT / "utils"

SCRIPTS = [
    "run_local.sh", "slurm.sh", "utt2spk_to_spk2utt.sh", "spk2utt_to_utt2spk.sh",
    "split_data.sh", "validate_data_dir.sh", "fix_data_dir.sh", "filter_scp.sh",
    "subset_data_dir.sh", "combine_data.sh", "copy_data_dir.sh", "prepare_lang.sh", "format_lm.sh",
]


def run(args, check=True, env=None, **kw):
    """Run a command from the repository root; return the CompletedProcess."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    res = subprocess.run([str(a) for a in args], cwd=ROOT, env=full_env,
                         capture_output=True, text=True, timeout=120, **kw)
    if check and res.returncode != 0:
        raise AssertionError(f"{args} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res


def util(name, *args, **kw):
    return run([UTILS / name, *args], **kw)


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def table(path):
    """Lines of a file as lists of fields."""
    return [line.split() for line in path.read_text().splitlines()]


# --------------------------------------------------------------- generic CLI

@pytest.mark.parametrize("script", SCRIPTS)
def test_help_and_wrong_arg_count(script):
    res = util(script, "--help", check=False)
    assert res.returncode == 0
    assert "Usage:" in res.stderr and "e.g.:" in res.stderr
    res = util(script, check=False)  # no arguments is wrong for all of them...
    if script in ("utt2spk_to_spk2utt.sh", "spk2utt_to_utt2spk.sh"):
        res = util(script, "a", "b", check=False)  # ...except the stdin filters
    assert res.returncode == 1
    assert "Usage:" in res.stderr and "e.g.:" in res.stderr


def test_scripts_are_executable_bash():
    for name in SCRIPTS + ["lib.sh", "jobs.sh", "parse_options.sh"]:
        path = UTILS / name
        assert os.access(path, os.X_OK), name
        assert path.read_text().startswith("#!/usr/bin/env bash\n"), name


def test_shellcheck_clean():
    """Every shell script of the tree (utils, steps, recipes, the top level)."""
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed")
    def ours(rel):
        if rel.parts[0] in (".venv", ".git"):
            return False
        if rel.parts[0] == "egs":  # a recipe's own files, not its steps/ utils/ links or outputs
            return len(rel.parts) == 4 or (len(rel.parts) == 5 and rel.parts[3] == "local")
        return True

    scripts = sorted(str(r) for r in (p.relative_to(ROOT) for p in ROOT.glob("**/*.sh")) if ours(r))
    assert "egs/timit/s5/run.sh" in scripts and "steps/score.sh" in scripts and len(scripts) > 40
    res = run(["shellcheck", "-x", *scripts], check=False)
    assert res.returncode == 0, res.stdout + res.stderr


# -------------------------------------------------------------------- lib.sh

def lib_script(tmp_path, body):
    return write(tmp_path / "libtest.sh",
                 f"#!/usr/bin/env bash\nset -euo pipefail\n. {UTILS}/lib.sh\n{body}\n")


def test_lib_log_and_die(tmp_path):
    script = lib_script(tmp_path, 'log "hello there"\ndie "bad thing"\necho unreachable')
    res = run(["bash", script], check=False)
    assert res.returncode == 1
    assert "unreachable" not in res.stdout
    lines = res.stderr.splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(libtest\.sh:4\) hello there", lines[0])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(libtest\.sh:5\) ERROR: bad thing", lines[1])


def test_lib_require_files(tmp_path):
    write(tmp_path / "a", "x\n")
    script = lib_script(tmp_path, f"""
require_files {tmp_path}/a {tmp_path}/missing1 {tmp_path}/missing2""")
    res = run(["bash", script], check=False)
    assert res.returncode == 1
    assert "missing1" in res.stderr and "missing2" not in res.stderr
    assert "(libtest.sh:5)" in res.stderr  # blames the caller, not lib.sh


def test_jobs_run_caps_prefixes_and_names_failures(tmp_path):
    """utils/jobs.sh's jobs_run: at most N jobs at once, each output line led by its name;
    after a failure no new job starts, the running ones end, and jobs_wait
    dies naming the failed job."""
    ev = tmp_path / "events"
    body = f""". {UTILS}/jobs.sh
job() {{ echo start >> {ev}; sleep "$2"; echo "hello $1"; echo end >> {ev}; [ "$1" != "${{FAIL:-}}" ]; }}
jobs_init "$N"
for n in a b c d e; do t=0.6; [ "$n" != b ] || t=0.1; jobs_run "$n" job "$n" "$t"; done
jobs_wait
echo all done"""
    script = lib_script(tmp_path, body)
    res = run(["bash", script], env={**os.environ, "N": "2"})
    assert concurrency(ev) == 2 and ev.read_text().split().count("end") == 5
    assert sorted(l for l in res.stderr.splitlines() if l.startswith("[")) == [
        f"[{n}] hello {n}" for n in "abcde"]
    assert res.stdout.strip() == "all done"
    ev.unlink()
    res = run(["bash", script], env={**os.environ, "N": "2", "FAIL": "b"}, check=False)
    assert res.returncode == 1 and "all done" not in res.stdout
    assert re.search(r"\(libtest\.sh:\d+\) ERROR: failed: b ", res.stderr), res.stderr
    assert ev.read_text().split().count("start") == 2        # b failed first: c, d and e never started
    ev.unlink()
    # one at a time: in the foreground, output as it is
    res = run(["bash", script], env={**os.environ, "N": "1"})
    assert concurrency(ev) == 1 and "hello a" in res.stdout and "[a]" not in res.stderr + res.stdout
    res = run(["bash", script], env={**os.environ, "N": "0"}, check=False)
    assert res.returncode == 1 and "positive integer, got '0'" in res.stderr


def test_lib_step_records(tmp_path):
    """A step is fresh only while its record (code, options, input checksums)
    matches; step_fresh says what changed."""
    write(tmp_path / "in.txt", "a\n")
    script = lib_script(tmp_path, f"""
. {ROOT}/path.sh
d={tmp_path}/out
r=$(step_record "opt=1" {tmp_path}/in.txt)
step_fresh "$d" x "$r" && echo early
step_done "$d" x "$r"
step_fresh "$d" x "$r" && echo done
step_fresh "$d" x "$(step_record "opt=2" {tmp_path}/in.txt)" || echo options
echo b > {tmp_path}/in.txt
step_fresh "$d" x "$(step_record "opt=1" {tmp_path}/in.txt)" || echo input
touch {tmp_path}/in.txt
step_done "$d" x "$(step_record "opt=1" {tmp_path}/in.txt)"
touch -d '2001-01-01' {tmp_path}/in.txt
step_fresh "$d" x "$(step_record "opt=1" {tmp_path}/in.txt)" && echo same-content""")
    res = run(["bash", script], check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["done", "options", "input", "same-content"]
    assert "the options changed" in res.stderr and f"input {tmp_path}/in.txt changed" in res.stderr
    rec = (tmp_path / "out" / ".x.record").read_text().splitlines()
    assert rec[0].startswith("code ") and rec[1] == "options opt=1" and rec[2].startswith(f"input {tmp_path}/in.txt 2 ")


def test_lib_atomic_mv(tmp_path):
    script = lib_script(tmp_path, f"""
cd {tmp_path}
echo new > t1; echo old > final
atomic_mv t1 final
: > t2
atomic_mv t2 final""")
    res = run(["bash", script], check=False)
    assert res.returncode == 1
    assert (tmp_path / "final").read_text() == "new\n"  # empty t2 was refused
    assert not (tmp_path / "t1").exists()
    assert "t2" in res.stderr


# ---------------------------------------------------------- parse_options.sh

OPTS_SCRIPT = """#!/usr/bin/env bash
set -euo pipefail
help_message="Usage: $0 [options] <in> <out>
e.g.: $0 --nj 8 a b"
nj=4
use_gpu=false
feat_type="mfcc plain"
stage=0
. {utils}/parse_options.sh
echo "nj=$nj use_gpu=$use_gpu feat_type=$feat_type stage=$stage"
echo "args=$#:$*"
"""


@pytest.fixture
def opts(tmp_path):
    path = write(tmp_path / "opts.sh", OPTS_SCRIPT.replace("{utils}", str(UTILS)))
    path.chmod(0o755)

    def call(*args, check=True):
        return run([path, *args], check=check)
    return call


def test_parse_options_defaults_and_forms(opts):
    assert opts().stdout.splitlines() == [
        "nj=4 use_gpu=false feat_type=mfcc plain stage=0", "args=0:"]
    out = opts("--nj", "8", "--feat-type=plp x", "--use-gpu", "true", "in", "--stage", "3").stdout
    # parsing stops at "in": the later --stage is a positional argument
    assert out.splitlines() == [
        "nj=8 use_gpu=true feat_type=plp x stage=0", "args=3:in --stage 3"]
    out = opts("--stage=2", "--", "--nj", "x").stdout
    assert out.splitlines() == ["nj=4 use_gpu=false feat_type=mfcc plain stage=2",
                                "args=2:--nj x"]
    assert opts("--stage=", "a").stdout.splitlines()[0].endswith(" stage=")  # empty value


def test_parse_options_errors(opts):
    res = opts("--no-such-opt", "1", check=False)
    assert res.returncode == 1 and "unknown option --no-such-opt" in res.stderr
    res = opts("--use-gpu", "yes", check=False)
    assert res.returncode == 1 and "true or false" in res.stderr
    res = opts("--nj", check=False)
    assert res.returncode == 1 and "--nj" in res.stderr


def test_parse_options_config(opts, tmp_path):
    conf = write(tmp_path / "my.conf", "# a comment line\n\n--nj=16   # trailing comment\n"
                                       "--feat-type=from conf\n--use-gpu=true\n")
    out = opts("--config", conf, "--nj", "2", "x").stdout
    assert out.splitlines()[0] == "nj=2 use_gpu=true feat_type=from conf stage=0"
    out = opts(f"--config={conf}").stdout
    assert out.splitlines()[0] == "nj=16 use_gpu=true feat_type=from conf stage=0"
    write(tmp_path / "bad.conf", "--bogus=1\n")
    res = opts("--config", tmp_path / "bad.conf", check=False)
    assert res.returncode == 1 and "unknown option --bogus" in res.stderr
    res = opts("--config", tmp_path / "absent.conf", check=False)
    assert res.returncode == 1 and "absent.conf" in res.stderr


def test_parse_options_help(opts):
    res = opts("--nj", "9", "--help")
    assert res.stdout == ""
    assert res.stderr.startswith("Usage: ")
    assert "e.g.:" in res.stderr
    assert "--nj '9'" in res.stderr  # current values, after earlier options
    assert "--use-gpu 'false'" in res.stderr
    assert "--feat-type 'mfcc plain'" in res.stderr
    assert "--stage '0'" in res.stderr
    assert "help-message" not in res.stderr
    assert opts("-h").returncode == 0


# -------------------------------------------------------------- run_local.sh

def read_log(path):
    text = path.read_text()
    lines = text.splitlines()
    assert lines[0].startswith("# ")
    assert lines[1].startswith("# Started at ")
    assert re.fullmatch(r"# Accounting: time=\d+ threads=\d+", lines[-2])
    m = re.fullmatch(r"# Ended \(code (\d+)\) at .+, elapsed time \d+ seconds", lines[-1])
    assert m, lines[-1]
    return lines[0][2:], lines[2:-2], int(m.group(1))


def test_run_local_job_array(tmp_path):
    log = tmp_path / "log" / "sub" / "job.JOB.log"
    util("run_local.sh", "JOB=1:3", log, "echo", "part JOB of 3", "ark:gunzip -c f.JOB.gz|")
    for j in (1, 2, 3):
        cmd, body, rc = read_log(tmp_path / "log" / "sub" / f"job.{j}.log")
        assert rc == 0
        # the spaces and the pipe survived as parts of single arguments
        assert body == [f"part {j} of 3 ark:gunzip -c f.{j}.gz|"]
        assert f"f.{j}.gz" in cmd
    assert not (tmp_path / "log" / "sub" / "job.4.log").exists()


def test_run_local_single_command_string_is_shell(tmp_path):
    log = tmp_path / "x.JOB.log"
    util("run_local.sh", "JOB=2:3", log, "echo JOB-a | tr a-z A-Z; echo done >&2")
    _, body, _ = read_log(tmp_path / "x.2.log")
    assert body == ["2-A", "DONE".lower()]
    assert not (tmp_path / "x.1.log").exists()


def test_run_local_runs_in_cwd_with_env(tmp_path):
    log = tmp_path / "env.log"
    util("run_local.sh", "--mem", "2G", "--gpu", "1", "--num-threads", "4",
         "--time", "1:00:00", log, 'echo "$PWD $MY_TEST_VAR"', env={"MY_TEST_VAR": "hi"})
    _, body, _ = read_log(log)
    assert body == [f"{ROOT} hi"]


def concurrency(events_file):
    """Largest number of jobs that were between 'start' and 'end' at once."""
    cur = best = 0
    for line in events_file.read_text().split():
        cur += 1 if line == "start" else -1
        best = max(best, cur)
    return best


def test_run_local_parallel_and_cap(tmp_path):
    ev = tmp_path / "events"
    body = f"echo start >> {ev}; sleep 1; echo end >> {ev}"
    util("run_local.sh", "JOB=1:4", tmp_path / "a.JOB.log", body, env={"MTL_NUM_CORES": "4"})
    assert concurrency(ev) == 4
    ev.unlink()
    body = body.replace("sleep 1", "sleep 0.5")
    util("run_local.sh", "--max-jobs-run", "2", "JOB=1:5", tmp_path / "b.JOB.log", body)
    assert concurrency(ev) == 2
    assert ev.read_text().split().count("end") == 5


def test_run_local_failure(tmp_path):
    res = util("run_local.sh", "JOB=1:3", tmp_path / "f.JOB.log",
               "echo running JOB; [ JOB -ne 2 ]", check=False)
    assert res.returncode == 1
    assert f"run_local.sh: 1 / 3 failed, log is in {tmp_path}/f.2.log" in res.stderr
    assert read_log(tmp_path / "f.2.log")[2] == 1
    assert read_log(tmp_path / "f.3.log")[2] == 0
    res = util("run_local.sh", tmp_path / "one.log", "exit 3", check=False)
    assert res.returncode == 1 and "1 / 1 failed" in res.stderr
    assert read_log(tmp_path / "one.log")[2] == 3


def test_run_local_rejects_shared_log_for_many_jobs(tmp_path):
    res = util("run_local.sh", "JOB=1:2", tmp_path / "same.log", "true", check=False)
    assert res.returncode == 1 and "JOB" in res.stderr


# ----------------------------------------------------------------- slurm.sh

@pytest.fixture
def fake_slurm(tmp_path):
    """A stub srun (and sbatch) on PATH: records its arguments, skips its
    options and runs the job command locally."""
    bindir = tmp_path / "bin"
    calls = tmp_path / "srun_calls"
    stub = ("#!/usr/bin/env bash\n"
            f'printf "%s\\n" "$(basename "$0") $*" >> {calls}\n'
            'while [[ ${1:-} == -* ]]; do shift; done\n'
            'exec "$@"\n')
    for name in ("srun", "sbatch"):
        write(bindir / name, stub).chmod(0o755)
    env = {"PATH": f"{bindir}:{os.environ['PATH']}", "SLURM_EXTRA_OPTS": "--partition=gpu --qos=high"}
    return env, calls


def test_slurm_submits_each_job(tmp_path, fake_slurm):
    env, calls = fake_slurm
    util("slurm.sh", "--mem", "6G", "--gpu", "2", "--num-threads=3", "--time", "2:00:00",
         "JOB=1:2", tmp_path / "log/s.JOB.log", "echo", "job JOB", "copy-feats ark:- ark:x.JOB|",
         env=env)
    lines = calls.read_text().splitlines()
    assert len(lines) == 2
    for line in lines:
        words = line.split()
        assert words[0] == "srun"
        for opt in ("--mem=6G", "--gres=gpu:2", "--cpus-per-task=3", "--time=2:00:00",
                    "--partition=gpu", "--qos=high"):
            assert opt in words, (opt, line)
    for j in (1, 2):
        cmd, body, rc = read_log(tmp_path / f"log/s.{j}.log")
        assert cmd.startswith("srun ")
        assert body == [f"job {j} copy-feats ark:- ark:x.{j}|"]
        assert rc == 0
        assert "threads=3" in (tmp_path / f"log/s.{j}.log").read_text()


def test_slurm_no_gpu_and_failure(tmp_path, fake_slurm):
    env, calls = fake_slurm
    res = util("slurm.sh", "JOB=1:3", tmp_path / "f.JOB.log", "exit $((JOB == 3))",
               env=env, check=False)
    assert res.returncode == 1
    assert f"1 / 3 failed, log is in {tmp_path}/f.3.log" in res.stderr
    assert "--gres" not in calls.read_text()
    res = util("slurm.sh", "--bogus", "1", tmp_path / "x.log", "true", env=env, check=False)
    assert res.returncode == 1 and "--bogus" in res.stderr


# -------------------------------------------------- speaker/utterance maps

def test_utt2spk_spk2utt_round_trip(tmp_path):
    utt2spk = "b-2 b\na-1 a\nb-1 b\nab-1 ab\na-2 a\n"
    res = util("utt2spk_to_spk2utt.sh", input=utt2spk)
    assert res.stdout == "a a-1 a-2\nab ab-1\nb b-1 b-2\n"
    spk2utt = write(tmp_path / "spk2utt", res.stdout)
    back = util("spk2utt_to_utt2spk.sh", spk2utt).stdout
    assert back == "a-1 a\na-2 a\nab-1 ab\nb-1 b\nb-2 b\n"
    assert util("utt2spk_to_spk2utt.sh", write(tmp_path / "u2s", back)).stdout == res.stdout


# ------------------------------------------------------------- data dirs

def regen_spk2utt(d):
    (d / "spk2utt").write_text(util("utt2spk_to_spk2utt.sh", d / "utt2spk").stdout)


def make_data(d, speakers=None, segments=False):
    """A consistent data dir; speakers maps speaker id -> #utterances."""
    speakers = speakers or {"spkA": 3, "spkB": 1, "spkC": 4, "spkD": 2, "spkE": 5}
    utts = sorted((f"{s}-{i:02d}", s) for s, n in speakers.items() for i in range(n))
    d.mkdir(parents=True, exist_ok=True)
    write(d / "utt2spk", "".join(f"{u} {s}\n" for u, s in utts))
    write(d / "text", "".join(f"{u} words of {u}\n" for u, _ in utts))
    write(d / "feats.scp", "".join(f"{u} feats.ark:{i}\n" for i, (u, _) in enumerate(utts)))
    write(d / "utt2dur", "".join(f"{u} 1.5\n" for u, _ in utts))
    if segments:
        write(d / "segments", "".join(f"{u} rec-{s} 0 1\n" for u, s in utts))
        write(d / "wav.scp", "".join(f"rec-{s} /x/{s}.wav\n" for s in sorted(speakers)))
    else:
        write(d / "wav.scp", "".join(f"{u} /x/{u}.wav\n" for u, _ in utts))
    spks = sorted(speakers)
    write(d / "cmvn.scp", "".join(f"{s} cmvn.ark:{i}\n" for i, s in enumerate(spks)))
    write(d / "spk2gender", "".join(f"{s} {'mf'[i % 2]}\n" for i, s in enumerate(spks)))
    regen_spk2utt(d)
    return utts


def test_split_data_by_speaker(tmp_path):
    data = tmp_path / "train"
    utts = make_data(data, segments=True)
    util("split_data.sh", data, 3)
    seen = []
    spk_part = {}
    for n in (1, 2, 3):
        part = data / "split3" / str(n)
        u2s = table(part / "utt2spk")
        assert u2s, f"part {n} is empty"
        assert u2s == sorted(u2s)
        seen += [u for u, _ in u2s]
        spks = sorted({s for _, s in u2s})
        for s in spks:
            assert spk_part.setdefault(s, n) == n, f"speaker {s} split across parts"
        # per-speaker files follow the speakers of the part
        assert [r[0] for r in table(part / "cmvn.scp")] == spks
        assert [r[0] for r in table(part / "spk2gender")] == spks
        assert [r[0] for r in table(part / "spk2utt")] == spks
        for f in ("text", "feats.scp", "utt2dur", "segments"):
            assert [r[0] for r in table(part / f)] == [u for u, _ in u2s], f
        assert [r[0] for r in table(part / "wav.scp")] == sorted({f"rec-{s}" for s in spks})
        res = util("validate_data_dir.sh", part)
        assert "Successfully validated" in res.stdout
    assert sorted(seen) == [u for u, _ in utts]  # every utterance exactly once
    # 15 utterances in speakers of 3,1,4,2,5: each part gets 4..6 of them
    sizes = [len(table(data / "split3" / str(n) / "utt2spk")) for n in (1, 2, 3)]
    assert max(sizes) <= 6 and min(sizes) >= 4, sizes


def test_split_data_per_utt_and_errors(tmp_path):
    data = tmp_path / "d"
    utts = make_data(data)
    res = util("split_data.sh", data, 6, check=False)
    assert res.returncode == 1 and "only 5 speakers" in res.stderr
    util("split_data.sh", "--per-utt", data, 6)
    parts = [table(data / "split6utt" / str(n) / "utt2spk") for n in range(1, 7)]
    assert sorted(u for p in parts for u, _ in p) == [u for u, _ in utts]
    assert all(2 <= len(p) <= 3 for p in parts), [len(p) for p in parts]
    for n in range(1, 7):  # a speaker's cmvn goes to every part holding it
        part = data / "split6utt" / str(n)
        assert [r[0] for r in table(part / "cmvn.scp")] == sorted({s for _, s in parts[n - 1]})
    res = util("split_data.sh", data, 0, check=False)
    assert res.returncode == 1


def test_split_data_skips_when_up_to_date(tmp_path):
    data = tmp_path / "d"
    make_data(data)
    util("split_data.sh", data, 2)
    marker = data / "split2" / "1" / "marker"
    marker.write_text("x")
    res = util("split_data.sh", data, 2)
    assert "up to date" in res.stderr and marker.exists()
    os.utime(data / "text", None)  # a source file changed: split again
    os.utime(data / "split2", (1, 1))
    util("split_data.sh", data, 2)
    assert not marker.exists()
    assert not [p for p in data.iterdir() if p.name.startswith(".split")]  # no temp dirs left


def test_validate_good_dir(tmp_path):
    for seg in (False, True):
        data = tmp_path / f"good{seg}"
        make_data(data, segments=seg)
        res = util("validate_data_dir.sh", data)
        assert res.stdout.strip() == f"Successfully validated data-directory {data}"


def replace_line(path, old_prefix, new_line):
    lines = path.read_text().splitlines(keepends=True)
    lines = [new_line if ln.startswith(old_prefix) else ln for ln in lines]
    path.write_text("".join(lines))


def bad_unsorted(d):
    lines = (d / "feats.scp").read_text().splitlines(keepends=True)
    lines[1], lines[2] = lines[2], lines[1]
    (d / "feats.scp").write_text("".join(lines))
    return "feats.scp", "not sorted"


def bad_duplicate(d):
    with open(d / "text", "a") as f:
        f.write("spkE-04 again\n")
    return "text", "spkE-04"


def bad_prefix(d):
    # utterance spkA-00 claimed by speaker spkB: not a prefix of it
    replace_line(d / "utt2spk", "spkA-00 ", "spkA-00 spkB\n")
    regen_spk2utt(d)
    return "spkA-00", "prefix"


def bad_empty_text(d):
    replace_line(d / "text", "spkC-02 ", "spkC-02\n")
    return "spkC-02", "empty transcript"


def bad_missing_key(d):
    replace_line(d / "wav.scp", "spkD-01 ", "")
    return "spkD-01", "wav.scp"


def bad_extra_key(d):
    with open(d / "feats.scp", "a") as f:
        f.write("spkZ-00 feats.ark:99\n")
    return "spkZ-00", "feats.scp"


def bad_spk2utt(d):
    replace_line(d / "spk2utt", "spkA ", "spkA spkA-00 spkA-01\n")
    return "spk2utt", "utt2spk"


def bad_cmvn(d):
    replace_line(d / "cmvn.scp", "spkB ", "")
    return "spkB", "cmvn.scp"


def bad_gender(d):
    replace_line(d / "spk2gender", "spkC ", "spkC x\n")
    return "spkC", "m or f"


@pytest.mark.parametrize("breaker", [bad_unsorted, bad_duplicate, bad_prefix, bad_empty_text,
                                     bad_missing_key, bad_extra_key, bad_spk2utt, bad_cmvn,
                                     bad_gender])
def test_validate_catches(tmp_path, breaker):
    data = tmp_path / "d"
    make_data(data)
    util("validate_data_dir.sh", data)
    words = breaker(data)
    res = util("validate_data_dir.sh", data, check=False)
    assert res.returncode == 1
    assert "Successfully" not in res.stdout
    for w in words:
        assert w in res.stderr, (w, res.stderr)


def test_validate_required_files(tmp_path):
    data = tmp_path / "d"
    make_data(data)
    (data / "feats.scp").unlink()
    res = util("validate_data_dir.sh", data, check=False)
    assert res.returncode == 1 and "feats.scp" in res.stderr
    util("validate_data_dir.sh", "--no-feats", data)
    (data / "text").unlink()
    (data / "wav.scp").unlink()
    util("validate_data_dir.sh", "--no-feats", "--no-text", "--no-wav", data)


def test_fix_data_dir(tmp_path):
    data = tmp_path / "d"
    utts = make_data(data)
    replace_line(data / "text", "spkB-00 ", "")        # spkB's only utterance
    replace_line(data / "text", "spkA-01 ", "spkA-01\n")  # empty transcript
    replace_line(data / "feats.scp", "spkE-03 ", "")
    lines = (data / "wav.scp").read_text().splitlines(keepends=True)
    (data / "wav.scp").write_text("".join(reversed(lines)))  # unsorted
    assert util("validate_data_dir.sh", data, check=False).returncode == 1
    original_text = (data / "text").read_text()

    res = util("fix_data_dir.sh", data)
    removed = ["spkA-01", "spkB-00", "spkE-03"]
    assert "removed 3" in res.stderr
    assert (data / ".backup" / "removed_utts").read_text().split() == removed
    assert (data / ".backup" / "text").read_text() == original_text
    kept = [u for u, _ in utts if u not in removed]
    for f in ("utt2spk", "text", "feats.scp", "wav.scp", "utt2dur"):
        assert [r[0] for r in table(data / f)] == kept, f
    spk2utt = table(data / "spk2utt")
    assert [r[0] for r in spk2utt] == ["spkA", "spkC", "spkD", "spkE"]
    assert spk2utt[0] == ["spkA", "spkA-00", "spkA-02"]
    assert [r[0] for r in table(data / "cmvn.scp")] == ["spkA", "spkC", "spkD", "spkE"]
    assert [r[0] for r in table(data / "spk2gender")] == ["spkA", "spkC", "spkD", "spkE"]
    util("validate_data_dir.sh", data)


def test_filter_scp(tmp_path):
    scp = write(tmp_path / "scp", "c x1\na x2 y\nb x3\nd x4\n")
    ids = write(tmp_path / "ids", "a 1\nd\nzz\n")
    assert util("filter_scp.sh", ids, scp).stdout == "a x2 y\nd x4\n"
    assert util("filter_scp.sh", "--exclude", ids, scp).stdout == "c x1\nb x3\n"
    empty = write(tmp_path / "empty", "")
    assert util("filter_scp.sh", empty, scp).stdout == ""
    assert util("filter_scp.sh", "--exclude", empty, scp).stdout == scp.read_text()
    assert util("filter_scp.sh", "-", scp, input="b\n").stdout == "b x3\n"
