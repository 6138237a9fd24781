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
The i-vector programs (``--num-threads``, mtlasr.ivector.backend) and
mtlasr.bin.probe_layers use them.
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


def capped_threads(requested: int, what: str = "--num-threads") -> int:
    """``requested`` threads, lowered to :func:`available_cores` with a
    warning that names ``what`` (the option or config key that asked).

    Raises:
      ValueError: ``requested`` < 1, or a bad ``$MTL_NUM_CORES``.
    """
    requested = int(requested)
    if requested < 1:
        raise ValueError(f"{what} must be >= 1, got {requested}")
    cores = available_cores()
    if requested > cores:
        logger.warning("%s %d asks for more threads than the %d core(s) this job was given (%s, else the "
                       "CPU affinity); using %d thread(s)", what, requested, cores, CORES_ENV, cores)
        return cores
    return requested


def set_torch_threads(requested: int, what: str = "--num-threads") -> int:
    """``torch.set_num_threads`` with :func:`capped_threads`; returns the
    number set. Errors as :func:`capped_threads`."""
    import torch

    n = capped_threads(requested, what)
    torch.set_num_threads(n)
    return n
