"""The issue-23 attacks on the command line, typed as a user types them: the installed ``spark-labs`` script, run
from another folder. Each is refused with one line on stderr and exit status 2, without a traceback, before
anything starts, and nothing it could have started is left running. (Every refusal, and that nothing is launched
in-process, is tested in tests/unit/test_command_validation.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

SPARK_LABS = Path(sys.executable).parent / "spark-labs"  # the venv's script, as a user types it
UNWRITABLE = "/proc/spark-labs-results"

ATTACKS = [
    # (argv, extra environment, what the one line says)
    (["bench", "run", "--concurrency", "1000000000"], {}, "--concurrency: 1000000000 is more than 4096"),
    (["bench", "run", "--num-requests", "-5"], {}, "--num-requests: -5 is too small"),
    (["bench", "spec", "--k", "1000000"], {}, "--k: 1000000 is more than 64"),
    (["engine", "start", "llamacpp", "--port", "70000"], {}, "'70000' is not a port"),
    (["serve", "--port", "99999"], {}, "99999 is not a port"),
    (["ui", "--port", "99999"], {}, "'99999' is not a port"),
    (["bench", "run", "--url", "http://127.0.0.1:1", "--model", "m"], {}, "nothing answers at 127.0.0.1:1"),
    (["bench", "run"], {"SPARK_LABS_MODEL": "does/not-exist"}, "SPARK_LABS_MODEL=does/not-exist is not used"),
    (["serve", "--max-in-flight", "0"], {}, "--max-in-flight 0 (or SPARK_LABS_GATEWAY_MAX_IN_FLIGHT)"),
    (["serve", "--upstream", "http://127.0.0.1:9/v1", "--api-keys-file", "keys.txt"], {}, "keys.txt: no such file"),
    (["serve", "--upstream", "ftp://127.0.0.1/v1"], {}, "is not an http(s) URL"),
    (["bench", "spec", "--out", f"{UNWRITABLE}/spec.csv"], {}, "does not exist"),
    (["bench", "sweep", "--out", UNWRITABLE], {}, "cannot write there"),
]


def _session_members(sid: int) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == sid and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return found


@pytest.mark.parametrize(("argv", "env", "said"), ATTACKS, ids=[" ".join(a[0])[:60] for a in ATTACKS])
def test_the_command_refuses_with_one_line_and_leaves_nothing_running(tmp_path, argv, env, said):
    environment = {k: v for k, v in os.environ.items() if k not in ("SPARK_LABS_MODEL", "OLLAMA_HOST")} | env
    started = time.monotonic()
    process = subprocess.Popen([str(SPARK_LABS), *argv], cwd=tmp_path, env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=60)  # `serve --port 99999` hung here before
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)
            process.wait()
    lines = err.strip().splitlines()
    assert process.returncode == 2, (out, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"spark-labs {argv[0]}") and said in lines[0], lines[0]
    assert time.monotonic() - started < 60
    assert not _session_members(process.pid), "something it started is still running"
    assert list(tmp_path.iterdir()) == []  # nothing written where it was run
