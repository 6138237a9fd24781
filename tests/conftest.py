import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "steps" / "libs"))

# The TIMIT recipe (seed 000), whose local/ and conf/ some tests use.
RECIPE = ROOT / "egs" / "timit" / "s5"

# The TIMIT sample the recipe tests run on: $TIMIT_SAMPLE, or ../shared/data/timit_sample
# beside the checkout. Tests that need it are skipped without it.
SAMPLE = Path(os.environ.get("TIMIT_SAMPLE", ROOT.parent / "shared" / "data" / "timit_sample"))


def sh(cmd, cwd=ROOT, check=True, timeout=None):
    """Run ``cmd`` with bash in ``cwd`` after sourcing its ./path.sh (as a
    recipe runs its steps). With ``check``, a non-zero exit raises an
    AssertionError showing the ends of stdout and stderr.

    Returns: the ``subprocess.CompletedProcess`` (text output).
    """
    p = subprocess.run(["bash", "-c", f". ./path.sh && {cmd}"], cwd=cwd, capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


@pytest.fixture
def one_torch_thread():
    """torch on one CPU thread for the test (tiny problems: more threads only
    spin, and the machine is shared), the thread count restored after."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
