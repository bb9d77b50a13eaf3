"""Supervisor that keeps engine processes from outliving the notebook kernel that started them.

The launcher starts ``python -m spark_labs.engines.reaper --parent PID -- <engine argv>`` in a new
session, so the reaper leads a process group that also contains the engine and every worker the
engine forks (vLLM's engine core, tokenizer pools, ...). The reaper polls its parent: when the parent
is gone (kernel restart, ``kill -9``, interpreter exit) it terminates the whole group. A notebook
crash therefore never leaves a server holding port 8000 and gigabytes of memory. Should the reaper
itself be killed, the engine gets SIGTERM from the kernel (Linux parent-death signal), and the
launcher's ``stop()`` still signals the group, which outlives its leader.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time

POLL_S = 0.5
GRACE_S = 10.0


# After SIGKILL the kernel still has to tear the processes down (and free their ports); on a loaded
# machine that takes a moment, and callers expect the port free when kill_group returns.
KILL_SETTLE_S = 5.0


def kill_group(pgid: int, grace_s: float = GRACE_S) -> None:
    """SIGTERM the group, give it ``grace_s`` to exit, then SIGKILL whatever is left and wait for it to go."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if _wait_gone(pgid, grace_s):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    _wait_gone(pgid, KILL_SETTLE_S)


def _wait_gone(pgid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _group_alive(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # Zombies of the group still "exist"; the reaper itself is one of them while it runs.
    from .ports import group_members

    return bool(group_members(pgid) - {os.getpid()})


def _die_with_the_reaper() -> None:
    """In the engine, before exec: ask Linux to SIGTERM it when the reaper dies, however the reaper dies
    (a SIGKILL gives the reaper no chance to stop the group itself). Elsewhere the launcher's stop() and the
    reaper's parent watch remain."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--parent", type=int, required=True, help="pid whose death stops the engine")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no engine command given")

    pgid = os.getpgid(0)
    # A SIGTERM sent to the group reaches the engine directly; the reaper just waits for it to go.
    signal.signal(signal.SIGTERM, lambda *_: None)
    signal.signal(signal.SIGINT, lambda *_: None)
    try:
        # The reaper is single-threaded, so a preexec_fn is safe here.
        child = subprocess.Popen(command, preexec_fn=_die_with_the_reaper)
    except FileNotFoundError as exc:
        print(f"spark-labs reaper: cannot start engine: {exc}", file=sys.stderr, flush=True)
        return 127

    while True:
        code = child.poll()
        if code is not None:
            return code
        if os.getppid() != args.parent:  # re-parented: whoever launched us is gone
            print("spark-labs reaper: parent process exited; stopping the engine", file=sys.stderr, flush=True)
            kill_group(pgid)
            return 143
        time.sleep(POLL_S)


if __name__ == "__main__":
    sys.exit(main())
