"""The device proofs (scripts run on a lent GPU, and the JSON they wrote) live in scripts/device_proof/, outside the
docs source; every script and result docs/device-proof.md names is there."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROOFS = ROOT / "scripts" / "device_proof"


def test_docs_source_holds_no_scripts():
    assert not sorted(p.name for p in (ROOT / "docs").rglob("*.py"))


def test_every_proof_the_page_names_exists():
    page = (ROOT / "docs" / "device-proof.md").read_text()
    named = set(re.findall(r"scripts/device_proof/[\w.]+\.(?:py|json|sh)", page))
    assert {"scripts/device_proof/device_proof_foundation.py", "scripts/device_proof/device_proof_kv.json"} <= named
    assert [p for p in sorted(named) if not (ROOT / p).is_file()] == []
    assert "docs/device_proof" not in page


def test_recorded_results_are_json():
    results = sorted(PROOFS.glob("*.json"))
    assert results, "the committed device-proof results are missing from scripts/device_proof/"
    for path in results:
        json.loads(path.read_text())
