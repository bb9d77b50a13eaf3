"""The commit-msg hook (.githooks/commit-msg) on temp message files, loaded in-process: no git, no subprocess.
tests/integration/test_commit_hook_git.py has git itself run it on a real commit."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path

import pytest

HOOK = Path(__file__).resolve().parents[2] / ".githooks" / "commit-msg"


@pytest.fixture(scope="module")
def hook():
    # The hook has no .py suffix (git runs it by name), so name the loader explicitly.
    loader = importlib.machinery.SourceFileLoader("commit_msg_hook", str(HOOK))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


def run(hook, tmp_path: Path, message: str) -> int:
    path = tmp_path / "COMMIT_EDITMSG"
    path.write_text(message, encoding="utf-8")
    return hook.main(["commit-msg", str(path)])


def test_hook_is_executable():
    assert HOOK.stat().st_mode & 0o111, "git skips a hook that is not executable: chmod +x .githooks/commit-msg"


@pytest.mark.parametrize("message", [
    "Fix the knee finder\n",
    "x" * 72 + "\n\nThe body may be as long as it likes. " * 5,
    "→" * 72 + "\n",  # characters, not UTF-8 bytes (216 of them)
    "# a long git comment " + "y" * 80 + "\nShort subject\n\nBody\n",
    "\n\nShort subject after blank lines git strips\n",
    "Short subject\n\nbody\n# ------------------------ >8 ------------------------\n" + "diff " * 40 + "\nz\n",
    "",  # git aborts an empty message itself
])
def test_accepts(hook, tmp_path, message):
    assert run(hook, tmp_path, message) == 0


@pytest.mark.parametrize(("message", "said"), [
    ("x" * 73 + "\n", "73 characters"),
    ("Subject\nbody right under it\n", "second line blank"),
    ("# comment\n" + "w" * 100 + "\nno blank line\n", "100 characters"),
])
def test_refuses(hook, tmp_path, capsys, message, said):
    assert run(hook, tmp_path, message) == 1
    assert said in capsys.readouterr().err


def test_limit_is_the_one_developing_md_states(hook):
    text = (HOOK.parents[1] / "DEVELOPING.md").read_text()
    assert hook.MAX_SUBJECT == 72 and "72 characters" in text.split("## Commits", 1)[1]
