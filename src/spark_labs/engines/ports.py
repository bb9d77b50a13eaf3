"""Port checks that name the process holding a port, so "address in use" is never a mystery."""

from __future__ import annotations

import os
import socket

import psutil


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR so sockets lingering in TIME_WAIT from a previous engine don't count as "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free right now (for tests and side-by-side engines)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _listening_pids(port: int) -> list[int | None]:
    """Pids with a listening socket on ``port`` (None: a socket whose owner this user cannot see)."""
    try:
        return [c.pid for c in psutil.net_connections(kind="inet")
                if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN]
    except (psutil.AccessDenied, PermissionError):
        pass
    # macOS lists sockets system-wide only for root; a process's own sockets are readable by its owner.
    pids: list[int | None] = []
    for proc in psutil.process_iter():
        try:
            if any(c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN
                   for c in _process_connections(proc)):
                pids.append(proc.pid)
        except psutil.Error:
            continue
    return pids


def _process_connections(proc: psutil.Process) -> list:
    # psutil 6 renamed Process.connections to net_connections; pyproject allows 5.9.
    method = getattr(proc, "net_connections", None) or proc.connections
    return method(kind="inet")


def listeners(port: int) -> dict[int | None, str]:
    """Every process listening on ``port``: pid → 'pid 123 (python -m vllm...)'. A socket whose owner this
    user cannot see is keyed ``None``. Several listeners happen with SO_REUSEPORT (vLLM sets it)."""
    return {pid: _describe(pid, port) for pid in _listening_pids(port)}


def _describe(pid: int | None, port: int) -> str:
    if pid is None:
        return f"a process this user cannot see (try `sudo lsof -i :{port}`)"
    try:
        proc = psutil.Process(pid)
        cmdline = " ".join(proc.cmdline())[:160] or proc.name()
    except psutil.Error:
        cmdline = "?"
    return f"pid {pid} ({cmdline})"


def port_holder(port: int) -> str | None:
    """'pid 123 (python -m vllm...)' for the process listening on ``port``, or None if unknown."""
    holders = listeners(port)
    return next(iter(holders.values()), None)


def group_members(pgid: int) -> set[int]:
    """Live (not zombie) processes of process group ``pgid``."""
    members = set()
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                members.add(proc.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return members
