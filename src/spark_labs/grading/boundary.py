"""The wall around one submission's run, built from the kernel's own namespaces and cgroups.

Inside the wall (see :mod:`.jail`, which builds it as the namespace's first process):

* **its own PID namespace**: the submission sees only its own processes (not the grader, not other
  submissions), and when the run ends the kernel ends every process in it, fork-hoppers and listeners too;
* **its own network namespace** (unless the lab's exercises must talk to the grading kernel's engines): only
  its own loopback, so it reaches no service of this machine (the grader's engines, a Ray cluster, a
  database) and nothing outside;
* **its own mount namespace**: the whole filesystem read-only; the reference, every submission and the
  gradebook's folders hidden; a private scratch (its folder, ``/tmp``, ``/dev/shm``, ``$HOME``) on one tmpfs
  whose size is the disk it may write, gone with the namespace;
* **no capabilities**: root inside cannot remount, mount or leave its cgroup;
* **a memory cgroup** capping the *sum* of its processes' memory, and a pids cgroup capping their number.

Building it needs root (or CAP_SYS_ADMIN), ``unshare`` and ``setpriv`` (util-linux) and a memory cgroup the
grader may create children in: true in the course container and on CI. :func:`containment_problem` says what
is missing otherwise, and the grader then refuses to grade rather than grade without the wall.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
GROUP_PREFIX = "spark-labs-grade-"
CANNOT_CONTAIN = 98  # the jail's exit status when the wall could not be built: nothing of the submission ran


@dataclass(frozen=True)
class Wall:
    """What the jail builds for one run (passed to it as JSON)."""

    scratch: str                     # host folder the scratch tmpfs is mounted on
    disk_limit: int                  # bytes of the scratch tmpfs
    hidden: tuple[str, ...] = ()     # files and folders the submission must not see
    readable: tuple[str, ...] = ()   # folders bound read-only into the scratch (the exported model)
    submission: str = ""             # staged copy of the notebook, copied into the scratch's work folder
    bind_tmp: bool = True            # put /tmp on the scratch too (not when Python itself lives under /tmp)
    own_network: bool = True         # its own network namespace (loopback only); False: the machine's network
    sockets: str = ""                # folder left writable for the learner kernel's Unix sockets (the judge's way in)

    def to_json(self) -> dict:
        return asdict(self)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _own_cgroup(controller: str) -> Path | None:
    """This process's cgroup folder for ``controller``: its v1 hierarchy, else the v2 unified one if that
    hierarchy offers the controller."""
    entries = [line.split(":", 2) for line in _read(Path("/proc/self/cgroup")).splitlines()]
    for _, controllers, path in entries:
        if controller in controllers.split(","):
            folder = CGROUP_ROOT / controller / path.lstrip("/")
            return folder if folder.is_dir() else None
    for _, controllers, path in entries:
        if controllers == "":  # "0::/path": the v2 hierarchy
            for root in (CGROUP_ROOT, CGROUP_ROOT / "unified"):
                folder = root / path.lstrip("/")
                if controller in _read(folder / "cgroup.controllers").split():
                    return folder
    return None


@dataclass
class Cgroup:
    """A memory cgroup (and a pids cgroup where there is one) holding every process of one run."""

    name: str
    memory: Path
    pids: Path | None = None
    folders: list[Path] = field(default_factory=list)

    @classmethod
    def create(cls, name: str, memory_limit: int, pids_limit: int) -> Cgroup:
        memory_parent = _own_cgroup("memory")
        if memory_parent is None:
            raise OSError("no memory cgroup to create the submission's group in")
        group = cls(name, memory_parent / name)
        group.memory.mkdir()
        group.folders.append(group.memory)
        if memory_limit:
            v1 = (group.memory / "memory.limit_in_bytes").exists()
            (group.memory / ("memory.limit_in_bytes" if v1 else "memory.max")).write_text(str(memory_limit))
            swap = group.memory / ("memory.memsw.limit_in_bytes" if v1 else "memory.swap.max")
            with contextlib.suppress(OSError):  # no swap accounting: nothing to cap
                swap.write_text(str(memory_limit) if v1 else "0")
        pids_parent = _own_cgroup("pids")
        if pids_parent is not None and pids_parent != memory_parent:
            group.pids = pids_parent / name
            group.pids.mkdir()
            group.folders.append(group.pids)
        elif pids_parent == memory_parent:
            group.pids = group.memory
        if group.pids is not None:
            (group.pids / "pids.max").write_text(str(pids_limit))
        return group

    def procs_files(self) -> list[str]:
        return [str(folder / "cgroup.procs") for folder in self.folders]

    def members(self) -> list[int]:
        pids: set[int] = set()
        for procs in self.procs_files():
            with contextlib.suppress(OSError):
                pids.update(int(p) for p in Path(procs).read_text().split())
        return sorted(pids)

    def kill_all(self, wait_s: float = 5.0) -> list[int]:
        """SIGKILL every member until none is left or ``wait_s`` passes; the members still there."""
        deadline = time.monotonic() + wait_s
        while (members := self.members()) and time.monotonic() < deadline:
            for pid in members:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, 9)
            time.sleep(0.05)
        return self.members()

    def peak_memory_bytes(self) -> int | None:
        for name in ("memory.max_usage_in_bytes", "memory.peak"):
            with contextlib.suppress(OSError, ValueError):
                return int((self.memory / name).read_text())
        return None

    def ran_out_of_memory(self) -> bool:
        """True when the cap was hit hard enough for the kernel to kill a process (or refuse memory)."""
        with contextlib.suppress(OSError, ValueError):
            events = (self.memory / "memory.events").read_text().split()
            return int(dict(zip(events[::2], events[1::2])).get("oom_kill", 0)) > 0
        with contextlib.suppress(OSError, ValueError):
            control = (self.memory / "memory.oom_control").read_text().split()
            killed = dict(zip(control[::2], control[1::2])).get("oom_kill")
            if killed is not None:
                return int(killed) > 0
        with contextlib.suppress(OSError, ValueError):
            return int((self.memory / "memory.failcnt").read_text()) > 0
        return False

    def remove(self) -> None:
        for folder in self.folders:
            with contextlib.suppress(OSError):
                folder.rmdir()


def containment_problem() -> str | None:
    """Why the wall cannot be built on this machine, or None when it can."""
    if not hasattr(os, "geteuid") or not Path("/proc/self/ns/pid").exists():
        return "the grader's sandbox needs Linux namespaces (this is not Linux)"
    if os.geteuid() != 0:
        return ("the grader's sandbox needs root to create namespaces and cgroups: grade inside the course "
                "container as root (docs/instructors.md)")
    missing = [tool for tool in ("unshare", "setpriv", "mount") if shutil.which(tool) is None]
    if missing:
        return f"the grader's sandbox needs {', '.join(missing)} (util-linux): apt-get install util-linux mount"
    if _own_cgroup("memory") is None:
        return "no memory cgroup is available to cap a submission's memory (mount cgroups into the container)"
    return None


def protected_paths() -> list[Path]:
    """What the run itself needs to see: Python, its environment, the course package."""
    import sys

    import spark_labs

    return [Path(sys.prefix).resolve(), Path(sys.executable).resolve().parent,
            Path(spark_labs.__file__).resolve().parent]


def hideable(paths: list[Path]) -> tuple[str, ...]:
    """``paths`` that may be hidden from a submission: a folder holding Python or the course package (a
    submissions folder given as ``.`` in the course checkout) is left visible; its notebooks are hidden one
    by one by the caller."""
    keep = [str(path) for path in (p.resolve() for p in paths) if not (path.is_dir() and covers_python(path))]
    return tuple(dict.fromkeys(keep))


def scratch_base() -> str | None:
    """Where a run's scratch is mounted: outside /tmp (which the scratch covers), /var/tmp on Linux."""
    return "/var/tmp" if os.path.isdir("/var/tmp") and os.access("/var/tmp", os.W_OK) else None


def covers_python(folder: str | Path) -> bool:
    """True when ``folder`` is, or holds, what the run itself needs (hiding or covering it would break the run)."""
    return any(p == Path(folder) or Path(folder) in p.parents for p in protected_paths())


def wall_command(worker: list[str], wall_file: Path, cgroup: Cgroup, own_network: bool = True) -> list[str]:
    """The command that joins the cgroup, enters new PID and mount namespaces and runs ``worker`` in the jail,
    which reads the wall from ``wall_file`` (a file, not an argument: the jail's command line is visible to
    the submission, and the wall names the other submissions).

    The shell joins the cgroup before ``unshare`` runs, so every later process is born inside it."""
    import sys

    join = 'for f in $SPARK_LABS_CGROUP_PROCS; do echo $$ > "$f" || exit 97; done; exec "$@"'
    return ["sh", "-c", join, "sh",
            "unshare", "--pid", "--fork", "--mount-proc", "--mount", *(["--net"] if own_network else []),
            "--kill-child", "--",
            sys.executable, "-m", "spark_labs.grading.jail", str(wall_file), "--",
            "setpriv", "--bounding-set", "-all", "--inh-caps", "-all", "--no-new-privs", "--", *worker]
