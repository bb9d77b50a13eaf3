"""The course as the tests see it: where it is and which labs it has (shared by every tier)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Every lab, by its reference notebook's name (solutions/ is the single source of notebook content).
LABS = tuple(sorted(path.stem for path in (ROOT / "solutions").glob("[0-9][0-9]_*.ipynb")))
NAMES_AN_EXERCISE = re.compile(r"Exercises? \d{2}\.\d")
