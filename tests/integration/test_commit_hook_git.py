"""git itself runs .githooks/commit-msg (as `make hooks` sets it up) and refuses a long subject."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

HOOKS = Path(__file__).resolve().parents[2] / ".githooks"

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                           *args], capture_output=True, text=True, timeout=60)


def test_git_runs_the_hook(tmp_path):
    assert git(tmp_path, "init", "-q").returncode == 0
    assert git(tmp_path, "config", "core.hooksPath", str(HOOKS)).returncode == 0
    (tmp_path / "f").write_text("1")
    git(tmp_path, "add", "f")
    refused = git(tmp_path, "commit", "-q", "-m", "s" * 73)
    assert refused.returncode != 0 and "73 characters" in refused.stderr
    accepted = git(tmp_path, "commit", "-q", "-m", "Short subject", "-m", "Detail in the body.")
    assert accepted.returncode == 0, accepted.stderr
    assert git(tmp_path, "log", "--format=%s").stdout.strip() == "Short subject"
