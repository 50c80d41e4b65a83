"""The stage tests share the runner tests' helpers (`tests/pipeline/test_runner_util.py`)."""

import sys
from pathlib import Path

_PIPELINE_TESTS = str(Path(__file__).resolve().parents[1])
if _PIPELINE_TESTS not in sys.path:
    sys.path.insert(0, _PIPELINE_TESTS)
