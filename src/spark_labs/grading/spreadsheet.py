"""Cells an instructor opens in a spreadsheet: learner text never runs there as a formula."""

from __future__ import annotations

import csv

# A spreadsheet runs a cell that starts with one of these as a formula (=HYPERLINK(...), +cmd|..., @SUM(...));
# tab and carriage return start one too in some of them (OWASP's list for CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """``value`` as a spreadsheet shows it as text: a string starting like a formula gets a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


class SafeWriter:
    """csv.writer whose every cell is :func:`spreadsheet_safe`: learner file names and messages reach the
    gradebook, and an instructor opens it in a spreadsheet."""

    def __init__(self, handle):
        self._writer = csv.writer(handle)

    def writerow(self, row: list[object]) -> None:
        self._writer.writerow([spreadsheet_safe(value) for value in row])
