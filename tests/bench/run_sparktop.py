"""`sparktop ARGS` through the launcher's run(), which returns: for profilers
(`python -m cProfile -o FILE tests/bench/run_sparktop.py serve NAME`)."""

import sys

from sparktop.main import run

sys.exit(run(sys.argv[1:]))
