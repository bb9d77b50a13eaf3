"""``spark-labs bench metrics``: the metric definitions and their names in other tools."""

from __future__ import annotations

import argparse
from dataclasses import asdict

import pandas as pd

from .shared import console, rich_table


def add_arguments(p: argparse.ArgumentParser) -> None:
    """No flags: it prints a table from the code."""


def run(args) -> int:
    from ..metrics import DEFINITIONS

    console.print(rich_table(pd.DataFrame([asdict(d) for d in DEFINITIONS]), "Metric definitions"))
    return 0
