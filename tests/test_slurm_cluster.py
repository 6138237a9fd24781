"""utils/slurm.sh on a real single-node Slurm cluster.

A module fixture starts munged, slurmctld and slurmd as the current user,
with every key, socket, configuration, state, spool, log and PID file in a
temp dir (nothing in /etc or the system's services is used), and stops them
by PID at the end. The node has 2 CPUs, 1000 MB and no GPUs (GresTypes=gpu
is declared, as on a cluster with GPUs elsewhere). The jobs run on this
machine, as the current user, through srun.

The module is skipped where the binaries are missing (Debian: slurm-wlm and
munge, see utils/install_debian_packages.sh); where they are present, a
cluster that does not come up is a failure showing the daemons' logs.
"""
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from conftest import RECIPE
from test_utils_shell import concurrency, read_log

ROOT = Path(__file__).resolve().parent.parent
SLURM_SH = ROOT / "utils" / "slurm.sh"
RUN_LOCAL = ROOT / "utils" / "run_local.sh"
MFCC_CONF = RECIPE / "conf" / "mfcc.conf"

# The daemons are in /usr/sbin, which a user's PATH may lack.
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
NEEDED = ("munged", "slurmctld", "slurmd", "srun", "sbatch", "sinfo", "squeue", "scontrol", "scancel")
BIN = {name: shutil.which(name, path=SEARCH_PATH) for name in NEEDED}
MISSING = [name for name, path in BIN.items() if path is None]
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"no {', '.join(MISSING)} on PATH or in /usr/sbin: a Slurm cluster needs "
                          "Debian's slurm-wlm and munge (utils/install_debian_packages.sh)")

NODE_CPUS = 2
NODE_MEM_MB = 1000
DEF_MEM_PER_CPU_MB = 100
START_TIMEOUT = 30   # seconds for the node to come up idle
STOP_TIMEOUT = 10    # seconds between SIGTERM and SIGKILL


def free_ports(n):
    """``n`` distinct TCP ports nothing listens on now (the daemons bind them a moment later)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def tail(path, n=30):
    """The last ``n`` lines of ``path``, headed by its name (or a note that it is absent)."""
    path = Path(path)
    if not path.exists():
        return f"--- {path}: absent"
    lines = path.read_text(errors="replace").splitlines()[-n:]
    return "\n".join([f"--- {path} (last {len(lines)} lines):", *lines])


def processes_with(*markers):
    """PIDs of the processes (other than this one) whose environment holds all
    the entries ``markers``: the daemons, slurmstepd and the jobs all carry
    the cluster's SLURM_CONF."""
    markers = {m.encode() for m in markers}
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            env = (d / "environ").read_bytes()
        except OSError:   # gone, or not ours
            continue
        if markers <= set(env.split(b"\0")):
            pids.append(int(d.name))
    return pids


def alive(pid):
    """Whether ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class Cluster:
    """A single-node cluster under ``base``; ``env`` is os.environ with its
    SLURM_CONF and without any enclosing job's SLURM_* variables."""

    def __init__(self, base):
        self.base = base
        self.conf = base / "slurm.conf"
        # munged wants every directory above its socket searchable by all,
        # which pytest's tmp dirs (under a 0700 one) are not.
        self.munge_dir = Path(tempfile.mkdtemp(prefix="munge-"))
        self.socket = self.munge_dir / "munge.socket"
        # munged --foreground logs to stderr, i.e. to its .out file, not --log-file
        self.logs = {name: base / "log" / f"{name}.log" for name in ("slurmctld", "slurmd")}
        self.outs = {name: base / "log" / f"{name}.out" for name in ("munged", "slurmctld", "slurmd")}
        self.procs = {}
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SRUN_", "SALLOC_", "SBATCH_"))}
        env["SLURM_CONF"] = str(self.conf)
        # The jobs' python3 is the tests' (whose packages the steps need).
        env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), SEARCH_PATH])
        self.env = env
        self.marker = f"SLURM_CONF={self.conf}"

    def write_files(self):
        (self.base / "log").mkdir()
        self.munge_dir.chmod(0o711)
        key = self.munge_dir / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        for d in ("state", "spool"):
            (self.base / d).mkdir()
        user = pwd.getpwuid(os.getuid()).pw_name
        b = self.base
        ctld_port, slurmd_port = free_ports(2)
        self.conf.write_text(f"""\
ClusterName=mtlasrtest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.socket}
GresTypes=gpu
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU={DEF_MEM_PER_CPU_MB}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
MailProg={shutil.which("true")}
ReturnToService=2
SlurmdParameters=config_overrides
KillWait=2
# Without this a job waits up to 3 s for the CPUs of one that just ended.
SchedulerParameters=batch_sched_delay=0
StateSaveLocation={b}/state
SlurmdSpoolDir={b}/spool
SlurmctldPidFile={b}/slurmctld.pid
SlurmdPidFile={b}/slurmd.pid
SlurmctldLogFile={self.logs["slurmctld"]}
SlurmdLogFile={self.logs["slurmd"]}
SlurmctldDebug=info
SlurmdDebug=info
NodeName=localhost NodeAddr=127.0.0.1 CPUs={NODE_CPUS} RealMemory={NODE_MEM_MB} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
""")

    def spawn(self, name, args):
        with open(self.outs[name], "w") as out:
            self.procs[name] = subprocess.Popen([BIN[name], *args], env=self.env, cwd=self.base,
                                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)

    def diagnosis(self):
        """The daemons' states and log tails, for a failure message."""
        states = ", ".join(f"{n} pid {p.pid} " + ("running" if p.poll() is None else f"exited {p.returncode}")
                           for n, p in self.procs.items())
        parts = [f"cluster in {self.base} ({states})", tail(self.outs["munged"])]
        for name in self.logs:
            parts += [tail(self.logs[name]), tail(self.outs[name], 10)]
        return "\n".join(parts)

    def wait_for(self, what, check, timeout):
        """Poll ``check()`` until true; fail with the logs when a daemon exits or time is up."""
        deadline = time.monotonic() + timeout
        while not check():
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                why = f"{', '.join(dead)} exited" if dead else f"not within {timeout} s"
                raise RuntimeError(f"Slurm test cluster: {what}: {why}\n{self.diagnosis()}")
            time.sleep(0.2)

    def node_state(self):
        res = subprocess.run([BIN["sinfo"], "-h", "-n", "localhost", "-o", "%T"], env=self.env,
                             capture_output=True, text=True, timeout=20)
        return res.stdout.strip()

    def start(self):
        self.write_files()
        m = self.munge_dir
        self.spawn("munged", ["--foreground", f"--socket={self.socket}", f"--key-file={m}/munge.key",
                              f"--pid-file={m}/munged.pid", f"--log-file={m}/munged.log",
                              f"--seed-file={m}/munged.seed"])
        self.wait_for(f"munged socket {self.socket}", self.socket.exists, 10)
        self.spawn("slurmctld", ["-D", "-f", str(self.conf)])
        self.spawn("slurmd", ["-D", "-N", "localhost", "-f", str(self.conf)])
        self.wait_for("node localhost idle in sinfo", lambda: self.node_state() == "idle", START_TIMEOUT)

    def jobs(self):
        """IDs of the jobs the controller has pending, running or completing."""
        res = subprocess.run([BIN["squeue"], "-h", "-o", "%i"], env=self.env, capture_output=True,
                             text=True, timeout=20)
        return res.stdout.split()

    def stop(self):
        """Cancel all jobs, stop the daemons by PID (TERM, then KILL after
        STOP_TIMEOUT s) and kill what else carries this cluster's SLURM_CONF.
        Returns a list of problems (empty when everything stopped)."""
        problems = []
        if self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
            try:
                if self.jobs():
                    subprocess.run([BIN["scancel"], "--full", "--user", pwd.getpwuid(os.getuid()).pw_name],
                                   env=self.env, capture_output=True, timeout=20)
                    deadline = time.monotonic() + STOP_TIMEOUT
                    while self.jobs() and time.monotonic() < deadline:
                        time.sleep(0.2)
            except subprocess.TimeoutExpired:
                problems.append("squeue/scancel timed out")
        for name in ("slurmd", "slurmctld", "munged"):
            p = self.procs.get(name)
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                problems.append(f"{name} (pid {p.pid}) ignored SIGTERM for {STOP_TIMEOUT} s: killed")
                p.kill()
                p.wait()
        # A slurmstepd may take a moment to go after its job left the queue.
        deadline = time.monotonic() + STOP_TIMEOUT / 2
        while (left := processes_with(self.marker)) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if left:
            problems.append(f"processes left running after the daemons stopped, killed: {left}")
        deadline = time.monotonic() + STOP_TIMEOUT
        while any(alive(pid) for pid in left) and time.monotonic() < deadline:
            time.sleep(0.1)
        still = [pid for pid in left if alive(pid)]
        if still:
            problems.append(f"processes survived SIGKILL: {still}")
        if not still and self.procs.get("munged") and self.procs["munged"].poll() is not None:
            shutil.rmtree(self.munge_dir, ignore_errors=True)
        return problems


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A running single-node cluster; everything it started is stopped after the module."""
    c = Cluster(tmp_path_factory.mktemp("slurm"))
    try:
        c.start()
        failure = None
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        failure = str(e)
    if failure:
        problems = c.stop()
        pytest.fail("\n".join([failure, *problems]), pytrace=False)
    yield c
    problems = c.stop()
    assert not problems, f"Slurm test cluster in {c.base}: " + "; ".join(problems)


def slurm_sh(cluster, *args, check=True, timeout=120, env=None, runner=SLURM_SH):
    """Run utils/slurm.sh (or ``runner``) from the repository root with the cluster's environment."""
    full_env = dict(cluster.env, **(env or {}))
    res = subprocess.run([str(runner), *map(str, args)], cwd=ROOT, env=full_env, capture_output=True,
                         text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"{runner.name} {args} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res


# ------------------------------------------------------------------ the jobs

def test_job_array_logs_match_run_local(cluster, tmp_path):
    """JOB=1:3 runs three jobs; each log holds just the job's output between
    run_local.sh's header and accounting lines, as run_local.sh's log for the
    same command does, and its first line is the srun command that ran it."""
    slurm_sh(cluster, "JOB=1:3", tmp_path / "slurm/x.JOB.log", "echo", "job JOB")
    slurm_sh(cluster, "JOB=1:3", tmp_path / "local/x.JOB.log", "echo", "job JOB", runner=RUN_LOCAL)
    assert sorted(p.name for p in (tmp_path / "slurm").iterdir()) == [f"x.{j}.log" for j in (1, 2, 3)]
    for j in (1, 2, 3):
        cmd, body, rc = read_log(tmp_path / f"slurm/x.{j}.log")
        local_cmd, local_body, local_rc = read_log(tmp_path / f"local/x.{j}.log")
        assert (body, rc) == (local_body, local_rc) == ([f"job {j}"], 0), tmp_path / f"slurm/x.{j}.log"
        words = shlex.split(cmd)
        assert words[0] == "srun" and "--ntasks=1" in words and "--cpus-per-task=1" in words, cmd
        assert words[-3:-1] == ["bash", "-c"] and words[-1] == local_cmd, (cmd, local_cmd)


def test_each_job_is_a_slurm_job_and_the_node_caps_them(cluster, tmp_path):
    """Every index is a Slurm job of its own (distinct SLURM_JOB_ID, one task,
    one CPU); without --max-jobs-run the node's 2 CPUs let 2 of 3 run at
    once, and --max-jobs-run 1 runs them one after the other."""
    ev = tmp_path / "events"
    # X, the job variable, is in none of the SLURM_* names
    body = f"echo $SLURM_JOB_ID $SLURM_NTASKS $SLURM_CPUS_PER_TASK; echo start >> {ev}; sleep 1; echo end >> {ev}"
    slurm_sh(cluster, "X=1:3", tmp_path / "a.X.log", body)
    ids = []
    for n in (1, 2, 3):
        out = read_log(tmp_path / f"a.{n}.log")[1]
        assert len(out) == 1 and re.fullmatch(r"\d+ 1 1", out[0]), (tmp_path / f"a.{n}.log", out)
        ids.append(out[0].split()[0])
    assert len(set(ids)) == 3, ids
    assert concurrency(ev) == NODE_CPUS, ev.read_text()
    ev.unlink()
    slurm_sh(cluster, "--max-jobs-run", "1", "X=1:3", tmp_path / "b.X.log", body)
    assert concurrency(ev) == 1, ev.read_text()
    assert ev.read_text().split().count("end") == 3


def test_num_threads_reaches_the_job(cluster, tmp_path):
    """--num-threads 2 allocates 2 CPUs to the job (SLURM_CPUS_PER_TASK and
    the job's CPU count) and the log's accounting line says threads=2."""
    log = tmp_path / "t.log"
    slurm_sh(cluster, "--num-threads", "2", log, "echo $SLURM_CPUS_PER_TASK $SLURM_JOB_CPUS_PER_NODE")
    _, body, rc = read_log(log)
    assert (body, rc) == (["2 2"], 0), log
    assert "# Accounting: time=" in log.read_text() and " threads=2\n" in log.read_text(), log


# The job's memory as its controller has it ("100M"); srun sets no
# SLURM_MEM_* variable in the job.
JOB_MEM = "scontrol show job $SLURM_JOB_ID | grep -o ' TRES=.*' | grep -o 'mem=[0-9]*[KMGT]'"


def test_mem_is_requested_and_checked(cluster, tmp_path):
    """--mem 300M is accepted and is the job's memory (in scontrol's TRES);
    without --mem the job gets the cluster's default (100M); more memory than the
    node has is refused by srun: slurm.sh fails naming the log, which holds
    srun's error."""
    log = tmp_path / "m.log"
    slurm_sh(cluster, "--mem", "300M", log, JOB_MEM)
    assert read_log(log)[1:] == (["mem=300M"], 0), log
    slurm_sh(cluster, log, JOB_MEM)
    assert read_log(log)[1:] == ([f"mem={DEF_MEM_PER_CPU_MB}M"], 0), log
    big = tmp_path / "big.log"
    res = slurm_sh(cluster, "--mem", f"{NODE_MEM_MB * 4}M", big, "echo should not run", check=False)
    assert res.returncode == 1
    assert f"1 / 1 failed, log is in {big}" in res.stderr, res.stderr
    _, body, rc = read_log(big)
    assert rc != 0 and "should not run" not in body, big
    assert any(line.startswith("srun: error:") and "emory" in line for line in body), (big, body)


def test_gpu_on_a_node_without_gpus_fails_with_srun_error(cluster, tmp_path):
    """--gpu 1 on a cluster whose node has no GPUs: srun refuses the job at
    once (no hang in the queue); slurm.sh exits 1 naming the log, which holds
    srun's reason and the --gres option it was given."""
    log = tmp_path / "g.log"
    start = time.monotonic()
    res = slurm_sh(cluster, "--gpu", "1", log, "echo should not run", check=False, timeout=60)
    assert res.returncode == 1 and f"1 / 1 failed, log is in {log}" in res.stderr, res.stderr
    assert time.monotonic() - start < 30
    cmd, body, rc = read_log(log)
    assert "--gres=gpu:1" in shlex.split(cmd), cmd
    assert rc == 1 and "should not run" not in body, log
    assert any(re.match(r"srun: error: .*(not available|Invalid generic resource)", line) for line in body), \
        (log, body)


def test_failing_job_is_named(cluster, tmp_path):
    """A job's exit status comes back through srun: with one job of three
    failing, slurm.sh exits 1 naming that job's log, whose Ended line has the
    job's own code (here 1, and 3 for a lone `exit 3`). The failed job's log
    has its output and srun's note on the exit (in either order: srun prints
    it as the task ends, its output may come later)."""
    res = slurm_sh(cluster, "JOB=1:3", tmp_path / "f.JOB.log", "echo running JOB; [ JOB -ne 2 ]", check=False)
    assert res.returncode == 1
    assert f"1 / 3 failed, log is in {tmp_path}/f.2.log" in res.stderr, res.stderr
    for j, code in ((1, 0), (2, 1), (3, 0)):
        _, body, rc = read_log(tmp_path / f"f.{j}.log")
        notes = [line for line in body if line.startswith("srun: ")]
        assert rc == code and [line for line in body if line not in notes] == [f"running {j}"], \
            (tmp_path / f"f.{j}.log", body)
        assert len(notes) == (1 if code else 0) and notes == [n for n in notes if "exit code 1" in n], \
            (tmp_path / f"f.{j}.log", body)
    one = tmp_path / "one.log"
    res = slurm_sh(cluster, one, "exit 3", check=False)
    assert res.returncode == 1 and f"1 / 1 failed, log is in {one}" in res.stderr, res.stderr
    assert read_log(one)[2] == 3, one


def test_job_sees_cwd_environment_and_extra_opts(cluster, tmp_path):
    """The job runs in the caller's directory with its environment (srun's
    default --export=ALL), SLURM_EXTRA_OPTS reaches srun (parsed by bash:
    the quoted job name keeps its space), and nothing but the job's output
    is in the log (no srun notes such as "job N queued and waiting for
    resources")."""
    log = tmp_path / "env.log"
    slurm_sh(cluster, log, 'echo "$PWD $MY_TEST_VAR"; echo "$SLURM_JOB_NAME"',
             env={"MY_TEST_VAR": "hi there", "SLURM_EXTRA_OPTS": "--job-name='extra opts'"})
    assert read_log(log)[1:] == ([f"{ROOT} hi there", "extra opts"], 0), log


def test_slurm_sh_inside_a_slurm_job(cluster, tmp_path):
    """slurm.sh run by a batch job (a recipe under sbatch, or a job calling
    $cmd) submits jobs of their own, not steps of the enclosing job (which
    would wait forever for its CPUs), and does not pass on the enclosing
    job's memory (sbatch sets SLURM_MEM_PER_NODE, which srun would take)."""
    outer = tmp_path / "outer.log"
    inner = f"{SLURM_SH} X=1:2 {tmp_path}/in.X.log {shlex.quote('echo $SLURM_JOB_ID; ' + JOB_MEM)}"
    res = subprocess.run([BIN["sbatch"], "--wait", "--quiet", "--mem=300M", f"--output={outer}",
                          "--wrap", f"echo $SLURM_JOB_ID $SLURM_MEM_PER_NODE; {inner}"],
                         cwd=ROOT, env=cluster.env, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, "\n".join([res.stderr, tail(outer)])
    outer_id, outer_mem = outer.read_text().splitlines()[0].split()
    assert outer_mem == "300", outer   # what the inner srun would take as --mem
    for x in (1, 2):
        body = read_log(tmp_path / f"in.{x}.log")[1]
        assert len(body) == 2 and body[0] != outer_id, (tmp_path / f"in.{x}.log", body, outer_id)
        assert body[1] == f"mem={DEF_MEM_PER_CPU_MB}M", (tmp_path / f"in.{x}.log", body)


def test_interrupt_cancels_the_jobs(cluster, tmp_path):
    """SIGTERM to slurm.sh while its jobs run: it exits 130, the jobs leave
    the queue (srun cancels them) and their processes are gone."""
    marker = tmp_path / "started"
    proc = subprocess.Popen([str(SLURM_SH), "JOB=1:2", str(tmp_path / "s.JOB.log"),
                             f"touch {marker}.JOB; sleep 60; echo not interrupted"],
                            cwd=ROOT, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not all(Path(f"{marker}.{j}").exists() for j in (1, 2)):
            assert time.monotonic() < deadline and proc.poll() is None, "the jobs did not start"
            time.sleep(0.2)
        running = cluster.jobs()
        assert len(running) == 2, running
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 130
        deadline = time.monotonic() + 20
        while set(cluster.jobs()) & set(running):
            assert time.monotonic() < deadline, f"jobs {running} still in the queue: {cluster.jobs()}"
            time.sleep(0.2)
        deadline = time.monotonic() + 10
        while procs := [p for j in running for p in processes_with(cluster.marker, f"SLURM_JOB_ID={j}")]:
            assert time.monotonic() < deadline, f"processes of jobs {running} still running: {procs}"
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for j in (1, 2):
        assert "not interrupted" not in (tmp_path / f"s.{j}.log").read_text(), tmp_path / f"s.{j}.log"


# ------------------------------------------------------- a step of the toolkit

def write_wav(path, seconds, freq, rate=16000):
    """A mono 16-bit wav: a tone with a little noise."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(int(freq))
    x = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((x * 32767).astype("<i2").tobytes())


def test_make_mfcc_through_slurm(cluster, tmp_path):
    """steps/make_mfcc.sh --cmd utils/slurm.sh --nj 2 on a 4-utterance data dir
    writes a feats.scp covering every utterance, with the features that
    utils/run_local.sh gives, and its job logs are srun's."""
    import kaldiio

    utts = {f"spk{s}-utt{u}": (0.4 + 0.1 * u, 200.0 * (s + u)) for s in (1, 2) for u in (1, 2)}
    dirs = {}
    for runner in ("slurm", "run_local"):
        data = tmp_path / runner / "data" / "tiny"
        (data / "wav").mkdir(parents=True)
        for utt, (seconds, freq) in utts.items():
            write_wav(data / "wav" / f"{utt}.wav", seconds, freq)
        (data / "wav.scp").write_text("".join(f"{u} {data}/wav/{u}.wav\n" for u in sorted(utts)))
        (data / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in sorted(utts)))
        (data / "spk2utt").write_text("spk1 spk1-utt1 spk1-utt2\nspk2 spk2-utt1 spk2-utt2\n")
        base = tmp_path / runner
        cmd = f"utils/{'slurm' if runner == 'slurm' else 'run_local'}.sh"
        res = subprocess.run(["bash", "-c", f". ./path.sh && steps/make_mfcc.sh --cmd {cmd} --nj 2 "
                              f"--mfcc-config '{MFCC_CONF}' '{data}' '{base}/log' '{base}/mfcc'"],
                             cwd=ROOT, env=cluster.env, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, f"make_mfcc.sh --cmd {cmd} failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
        dirs[runner] = (data, base)
    data, base = dirs["slurm"]
    feats = kaldiio.load_scp(str(data / "feats.scp"))
    assert sorted(feats) == sorted(utts), data / "feats.scp"
    frames = dict(line.split() for line in (data / "utt2num_frames").read_text().splitlines())
    local = kaldiio.load_scp(str(dirs["run_local"][0] / "feats.scp"))
    for utt, (seconds, _) in utts.items():
        m = feats[utt]
        assert m.ndim == 2 and m.shape[0] == int(frames[utt]) and np.isfinite(m).all(), utt
        assert abs(m.shape[0] - seconds * 100) <= 3, (utt, m.shape)   # 10 ms frame shift
        np.testing.assert_allclose(m, local[utt], rtol=1e-5, atol=1e-5, err_msg=utt)
    for j in (1, 2):
        log = base / "log" / f"make_mfcc_tiny.{j}.log"
        cmd, _, rc = read_log(log)
        assert cmd.startswith("srun ") and rc == 0, log
