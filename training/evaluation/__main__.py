"""``python -m training.evaluation``: the same as ``wegen-eval``."""

import sys

from training.evaluation.cli import main

sys.exit(main())
