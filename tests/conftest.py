"""Fixtures and settings every tier shares. The tiers, each in its own folder with its own conftest.py:

- ``unit/``: starts no process (enforced there); runs in parallel (``make test-unit``).
- ``integration/``: real engines on the embedded model, the gateway, Chromium, CLI subprocesses, mkdocs.
- ``notebooks/``: each lab run once and compared with its recording, untouched-learner runs, grading,
  kernels and JupyterLab.

The folder is the truth: each tier's conftest marks its tests (``-m integration``, ``-m notebook``, ``-m unit``).
Helpers shared across tiers (``gateway_support.py``, ``submission_fixtures.py``, ``engine_flags/``) live here in
tests/, which is on ``sys.path`` for every tier."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("SPARK_LABS_PROFILE", "tiny")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--lab", default=None, metavar="NN",
                     help="notebooks tier: only lab NN's nbval and untouched-learner runs (make test-notebooks LAB=02)")

