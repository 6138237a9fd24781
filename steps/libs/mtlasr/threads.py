"""The CPU cores a job was given, and thread counts capped to them.

A job must not ask for more threads than it has cores: on the 2-core
machine of this project a training with 2 torch threads fell from about
6,000 to 49-90 frames/s while another job shared the cores, because
threads that wait for each other spin when one of them is descheduled.

The cores of a job (:func:`available_cores`) are, in order:

* ``$MTL_NUM_CORES`` (:data:`CORES_ENV`): set by utils/run_local.sh for
  each job it starts, to the job's share of the cores (the cores divided by
  the jobs that run at once, at least 1; under utils/slurm.sh the
  ``--num-threads`` CPUs Slurm allocated); a user may set it to hold a run
  to fewer cores than the machine has (e.g. when other work shares it);
* otherwise the CPUs of the process's affinity mask
  (``os.sched_getaffinity``: taskset, a cgroup cpuset, a container's CPUs),
  or ``os.cpu_count()`` where there is no affinity call.

:func:`capped_threads` lowers a requested thread count to that number, with
a warning; :func:`set_torch_threads` does so for ``torch.set_num_threads``.
The i-vector programs (``--num-threads``, mtlasr.ivector.backend),
mtlasr.bin.probe_layers and mtlasr.bin.train_nnet (``train.num_threads``,
divided among torchrun's processes on CPU) use them.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

CORES_ENV = "MTL_NUM_CORES"


def available_cores() -> int:
    """The cores this process may use (see the module docstring).

    Raises:
      ValueError: ``$MTL_NUM_CORES`` is set but not a positive integer.
    """
    value = os.environ.get(CORES_ENV, "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{CORES_ENV} must be a positive integer, got '{value}'")
        return int(value)
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def capped_threads(requested: int, what: str = "--num-threads", procs: int = 1) -> int:
    """``requested`` threads, lowered to this process's share of
    :func:`available_cores` with a warning that names ``what`` (the option
    or config key that asked). ``procs``: the processes of the job that
    share its cores (torchrun's ``LOCAL_WORLD_SIZE``); each gets
    cores // procs, at least 1.

    Raises:
      ValueError: ``requested`` or ``procs`` < 1, or a bad ``$MTL_NUM_CORES``.
    """
    requested = int(requested)
    if requested < 1:
        raise ValueError(f"{what} must be >= 1, got {requested}")
    if procs < 1:
        raise ValueError(f"processes sharing the cores must be >= 1, got {procs}")
    total = available_cores()
    cores = max(1, total // procs)
    if requested > cores:
        share = f" shared by {procs} processes" if procs > 1 else ""
        logger.warning("%s %d asks for more threads than the %d core(s) this job was given%s (%s, else the "
                       "CPU affinity); using %d thread(s)", what, requested, total, share, CORES_ENV, cores)
        return cores
    return requested


def set_torch_threads(requested: int, what: str = "--num-threads", procs: int = 1) -> int:
    """``torch.set_num_threads`` with :func:`capped_threads`; returns the
    number set. Errors as :func:`capped_threads`."""
    import torch

    n = capped_threads(requested, what, procs)
    torch.set_num_threads(n)
    return n
