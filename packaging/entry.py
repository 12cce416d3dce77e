"""The frozen app's one entry point: ``wegen`` opens the window, ``wegen-cli`` is the CLI.

Both executables of a bundle run this script; which one was started decides what it does
(the name of the executable, so a symlink such as /usr/bin/wegen-cli works too).
"""

import multiprocessing
import sys
from pathlib import Path


def main() -> int:
    multiprocessing.freeze_support()
    if Path(sys.argv[0]).stem.lower() == "wegen-cli":
        from engine.cli import main as run
    else:
        from desktop.main import main as run
    return run() or 0


if __name__ == "__main__":
    sys.exit(main())
