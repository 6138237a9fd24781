"""Threads against cores: utils/run_local.sh runs no more jobs at once than
the cores hold (cores / --num-threads), warns when asked to run more, and
gives each job its share in MTL_NUM_CORES; mtlasr.threads caps the Python programs' thread
counts at it. The core count is faked through MTL_NUM_CORES.
"""

import logging
import os
import subprocess

import pytest
import torch

from mtlasr import threads

from conftest import ROOT  # noqa: E402

RUN_LOCAL = ROOT / "utils" / "run_local.sh"


def run_local(tmp_path, *args, cores=None, env=None):
    """Run utils/run_local.sh ARGS with MTL_NUM_CORES=cores (None: unset);
    each job writes its MTL_NUM_CORES to its log. Returns (stderr, the
    jobs' MTL_NUM_CORES values)."""
    e = {k: v for k, v in os.environ.items() if k != threads.CORES_ENV}
    if cores is not None:
        e[threads.CORES_ENV] = str(cores)
    e.update(env or {})
    for f in tmp_path.glob("j.*.log"):
        f.unlink()
    p = subprocess.run(["bash", str(RUN_LOCAL), *args, str(tmp_path / "j.JOB.log"), 'echo "cores=$MTL_NUM_CORES"'],
                       cwd=ROOT, env=e, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    shares = sorted({line for f in tmp_path.glob("j.*.log") for line in f.read_text().splitlines()
                     if line.startswith("cores=")})
    return p.stderr, shares


@pytest.mark.parametrize("args,cores,warned,share", [
    (["JOB=1:2"], 2, False, "cores=1"),
    (["JOB=1:4"], 2, False, "cores=1"),                                 # nj 4 on 2 cores: 2 at a time
    (["--num-threads", "2", "JOB=1:2"], 2, False, "cores=2"),           # 2 threads each: one at a time
    (["--num-threads", "2", "JOB=1:2"], 4, False, "cores=2"),
    (["--max-jobs-run", "4", "JOB=1:4"], 2, True, "cores=1"),           # asked for more than the cores
    (["--num-threads", "2", "--max-jobs-run", "2", "JOB=1:3"], 2, True, "cores=1"),
    (["--num-threads", "3", "JOB=1:1"], 2, True, "cores=2"),            # one job, more threads than cores
    (["--num-threads", "2", "--launcher", "env", "JOB=1:4"], 2, False, "cores=2"),  # a cluster allocates
])
def test_run_local_warns_when_jobs_times_threads_exceed_cores(tmp_path, args, cores, warned, share):
    err, shares = run_local(tmp_path, *args, cores=cores)
    warnings = [line for line in err.splitlines() if "WARNING" in line]
    if warned:
        opt = lambda name, default: int(args[args.index(name) + 1]) if name in args else default  # noqa: E731
        jobs = opt("--max-jobs-run", int(args[-1].split(":")[1]))
        n = opt("--num-threads", 1)
        assert len(warnings) == 1, err
        assert f"{jobs} jobs at once x {n} thread(s) each = {jobs * n} threads on {cores} core(s)" in warnings[0]
        assert "--max-jobs-run" in warnings[0] and "--num-threads" in warnings[0]
        assert str(tmp_path / "j.JOB.log") in warnings[0]
    else:
        assert not warnings, err
    assert shares == [share]


@pytest.mark.parametrize("threads_each,cores,most", [(1, 2, 2), (2, 2, 1), (1, 3, 3), (2, 5, 2)])
def test_run_local_runs_no_more_jobs_at_once_than_the_cores_hold(tmp_path, threads_each, cores, most):
    """Without --max-jobs-run, the jobs beyond cores / --num-threads wait:
    each job counts the jobs running beside it (a directory entry each)."""
    live = tmp_path / "live"
    live.mkdir()
    body = f'touch {live}/JOB; ls {live} | wc -l > {tmp_path}/n.JOB; sleep 0.4; rm {live}/JOB'
    e = dict(os.environ, MTL_NUM_CORES=str(cores))
    p = subprocess.run(["bash", str(RUN_LOCAL), "--num-threads", str(threads_each), "JOB=1:6",
                        str(tmp_path / "j.JOB.log"), body], cwd=ROOT, env=e, capture_output=True, text=True)
    assert p.returncode == 0 and "WARNING" not in p.stderr, p.stderr
    seen = [int((tmp_path / f"n.{j}").read_text()) for j in range(1, 7)]
    assert max(seen) <= most, seen


def test_run_local_cores_from_affinity_not_omp_num_threads(tmp_path):
    """Without MTL_NUM_CORES the cores are the affinity's; OMP_NUM_THREADS=1,
    which the steps export and nproc would obey, does not count."""
    n = len(os.sched_getaffinity(0))
    err, shares = run_local(tmp_path, f"JOB=1:{n}", env={"OMP_NUM_THREADS": "1"})
    assert "WARNING" not in err and shares == ["cores=1"]
    err, shares = run_local(tmp_path, "JOB=1:1", env={"OMP_NUM_THREADS": "1"})
    assert "WARNING" not in err and shares == [f"cores={n}"]
    err, _ = run_local(tmp_path, "--num-threads", str(n + 1), "JOB=1:1", env={"OMP_NUM_THREADS": "1"})
    assert f"on {n} core(s)" in err


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_bad_core_counts_are_errors(tmp_path, value, monkeypatch):
    e = dict(os.environ, MTL_NUM_CORES=value)
    p = subprocess.run(["bash", str(RUN_LOCAL), "JOB=1:2", str(tmp_path / "j.JOB.log"), "true"], cwd=ROOT, env=e,
                       capture_output=True, text=True)
    assert p.returncode == 1 and f"MTL_NUM_CORES must be a positive integer, got '{value}'" in p.stderr
    p = subprocess.run(["bash", str(RUN_LOCAL), "--num-threads", "0", str(tmp_path / "j.log"), "true"], cwd=ROOT,
                       capture_output=True, text=True)
    assert p.returncode == 1 and "--num-threads must be a positive integer" in p.stderr
    monkeypatch.setenv(threads.CORES_ENV, value)
    with pytest.raises(ValueError, match="MTL_NUM_CORES must be a positive integer"):
        threads.available_cores()


def test_python_threads_capped_at_the_cores(monkeypatch, caplog):
    monkeypatch.delenv(threads.CORES_ENV, raising=False)
    assert threads.available_cores() == len(os.sched_getaffinity(0))
    monkeypatch.setenv(threads.CORES_ENV, "2")
    assert threads.available_cores() == 2
    before = torch.get_num_threads()
    try:
        with caplog.at_level(logging.WARNING):
            assert threads.set_torch_threads(2) == 2 and torch.get_num_threads() == 2
            assert not caplog.records
            assert threads.set_torch_threads(8, "train.num_threads") == 2 and torch.get_num_threads() == 2
        assert len(caplog.records) == 1
        assert "train.num_threads 8 asks for more threads than the 2 core(s)" in caplog.text
        with pytest.raises(ValueError, match="--num-threads must be >= 1"):
            threads.capped_threads(0)
        # torchrun's processes on one node share the job's cores
        monkeypatch.setenv(threads.CORES_ENV, "5")
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert threads.capped_threads(2, "train.num_threads", procs=2) == 2 and not caplog.records
            assert threads.capped_threads(4, "train.num_threads", procs=2) == 2
            assert threads.capped_threads(3, "train.num_threads", procs=8) == 1
        assert "the 5 core(s) this job was given shared by 2 processes" in caplog.text
        with pytest.raises(ValueError, match="processes sharing the cores"):
            threads.capped_threads(1, procs=0)
    finally:
        torch.set_num_threads(before)


def test_program_caps_its_threads(tmp_path, monkeypatch, caplog):
    """A program given more --num-threads than its job's cores warns and runs."""
    from mtlasr.ivector.backend import make_backend

    monkeypatch.setenv(threads.CORES_ENV, "1")
    before = torch.get_num_threads()
    try:
        with caplog.at_level(logging.WARNING):
            make_backend("torch", "cpu", num_threads=3)
        assert torch.get_num_threads() == 1
        assert "--num-threads 3 asks for more threads than the 1 core(s)" in caplog.text
    finally:
        torch.set_num_threads(before)
