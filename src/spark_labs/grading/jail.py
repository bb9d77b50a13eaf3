"""``python -m spark_labs.grading.jail WALL_FILE -- COMMAND...``: build the wall, then run COMMAND inside it.

Runs as the first process of fresh PID, mount and (most labs) network namespaces (``unshare --pid --fork
--mount-proc --mount --net``, see :func:`.boundary.wall_command`), still with root's capabilities, and:

1. makes every mount private (nothing done here reaches the host) and read-only, ``/proc/sys`` and
   ``/proc/sysrq-trigger`` included; ``/dev`` keeps its devices; brings up the loopback of its own network
   namespace (when it has one), so the learner's own engines can listen on 127.0.0.1;
2. mounts one tmpfs of the wall's size on the scratch folder and puts the submission's folder, ``/tmp``,
   ``/dev/shm`` and ``$HOME`` on it, so everything it may write is counted against one cap and vanishes;
3. binds the folders it may read (the exported model) read-only into the scratch, and covers the hidden ones
   (reference, submissions, gradebook) with empty read-only mounts;
4. runs COMMAND (``setpriv`` dropping every capability, then the worker) and exits with its status. When this
   process exits the kernel ends every other process of the namespace.

A step that fails stops here with status 98 and one line on stderr: an uncontained run never starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .boundary import CANNOT_CONTAIN

LEFT_WRITABLE = ("/dev", "/dev/pts")  # device nodes: /dev/null must stay writable; they hold no files
PROC_READ_ONLY = ("/proc/sys", "/proc/sysrq-trigger", "/proc/bus", "/proc/fs", "/proc/irq")


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


def _mount_points() -> list[str]:
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return sorted(set(points), key=len)


def _bind_read_only(source: str, target: str) -> None:
    _mount("--bind", source, target)
    _mount("-o", "remount,bind,ro", target)


def _read_only(point: str) -> None:
    try:
        _mount("-o", "remount,bind,ro", point)
    except subprocess.CalledProcessError:
        _bind_read_only(point, point)  # not a bind mount yet: make it one, then read-only


def loopback_up() -> None:
    """Bring up ``lo`` in a fresh network namespace (it starts down), without needing iproute2."""
    import fcntl
    import socket
    import struct

    get_flags, set_flags, up = 0x8913, 0x8914, 0x1  # SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP (linux/sockios.h)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(probe, get_flags, request))[1]
        fcntl.ioctl(probe, set_flags, struct.pack("16sH14x", b"lo", flags | up))


def build(wall: dict) -> dict[str, str]:
    """Build the wall; return the environment the command runs with."""
    submission = Path(wall["submission"]) if wall.get("submission") else None
    notebook = submission.read_bytes() if submission else b""  # read before anything is hidden
    _mount("--make-rprivate", "/")
    if wall.get("own_network", True):
        loopback_up()
    scratch = Path(wall["scratch"])
    for point in _mount_points():
        if point in LEFT_WRITABLE or point.startswith("/dev/pts"):
            continue
        _read_only(point)
    for point in PROC_READ_ONLY:
        if os.path.exists(point):
            _bind_read_only(point, point)
    _mount("-t", "tmpfs", "-o", f"size={int(wall['disk_limit'])},mode=0755", "spark-labs-scratch", str(scratch))
    folders = {name: scratch / name for name in ("work", "tmp", "shm", "home", "runtime", "cache")}
    for folder in folders.values():
        folder.mkdir()
    folders["tmp"].chmod(0o1777)
    if wall.get("sockets"):  # the kernel's Unix sockets: how the grading kernel, outside, reaches it
        _mount("--bind", wall["sockets"], wall["sockets"])
        _mount("-o", "remount,bind,rw", wall["sockets"])
    if wall.get("bind_tmp"):  # not when the course itself lives under /tmp: covering it would hide Python
        _mount("--bind", str(folders["tmp"]), "/tmp")
    if os.path.isdir("/dev/shm"):
        _mount("--bind", str(folders["shm"]), "/dev/shm")
    if submission:
        (folders["work"] / submission.name).write_bytes(notebook)
    for readable in wall.get("readable", []):
        target = folders["cache"] / Path(readable).name
        target.mkdir()
        _bind_read_only(readable, str(target))
    for hidden in wall.get("hidden", []):
        path = Path(hidden)
        if path.is_dir():
            _mount("-t", "tmpfs", "-o", "size=4k,ro,mode=0555", "spark-labs-hidden", str(path))
        elif path.exists():
            _mount("--bind", "/dev/null", str(path))
    os.chdir(folders["work"])
    return {"HOME": str(folders["home"]), "TMPDIR": str(folders["tmp"]),
            "JUPYTER_RUNTIME_DIR": str(folders["runtime"]), "IPYTHONDIR": str(folders["home"] / ".ipython"),
            "SPARK_LABS_CACHE": str(folders["cache"]), "XDG_CACHE_HOME": str(folders["home"] / ".cache"),
            "MPLCONFIGDIR": str(folders["home"] / ".mpl")}


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m spark_labs.grading.jail WALL_FILE -- COMMAND...", file=sys.stderr)
        return 2
    command = argv[2:]
    try:
        wall = json.loads(Path(argv[0]).read_text())  # read before the wall hides the folder it is in
        env = {**os.environ, **build(wall)}
    except (OSError, subprocess.CalledProcessError) as exc:  # OSError: also a loopback that would not come up
        detail = getattr(exc, "stderr", "") or str(exc)
        print(f"[grader] could not build the sandbox: {' '.join(getattr(exc, 'cmd', []) or [])} {detail}".strip(),
              file=sys.stderr)
        return CANNOT_CONTAIN
    return subprocess.run(command, env=env).returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
