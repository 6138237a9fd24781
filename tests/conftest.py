import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "steps" / "libs"))

# The TIMIT sample the recipe tests run on: $TIMIT_SAMPLE, or ../shared/data/timit_sample
# beside the checkout. Tests that need it are skipped without it.
SAMPLE = Path(os.environ.get("TIMIT_SAMPLE", ROOT.parent / "shared" / "data" / "timit_sample"))
