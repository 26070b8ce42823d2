"""`make e2e` (`make e2e-down`): the entry point of the e2e package beside it (run.py: the runner,
runner.py: what the stages share, stages/: one module per stage). `--list` prints the stages and checks.

    python tests/e2e/e2e.py [--skip-build] [--keep] [--only STAGE[,STAGE...]] | --list | --down
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Run as a script, this folder comes first on sys.path, where `e2e` would be this file: import the package
# from the folder above instead.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from e2e.run import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
