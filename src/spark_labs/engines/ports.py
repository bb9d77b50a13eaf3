"""Port checks that name the process holding a port, so "address in use" is never a mystery."""

from __future__ import annotations

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


def port_holder(port: int) -> str | None:
    """'pid 123 (python -m vllm...)' for the process listening on ``port``, or None if unknown."""
    try:
        connections = psutil.net_connections(kind="inet")
    except (psutil.AccessDenied, PermissionError):
        return None
    for conn in connections:
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
            if conn.pid is None:
                return "a process this user cannot see (try `sudo lsof -i :%d`)" % port
            try:
                proc = psutil.Process(conn.pid)
                cmdline = " ".join(proc.cmdline())[:160] or proc.name()
            except psutil.Error:
                cmdline = "?"
            return f"pid {conn.pid} ({cmdline})"
    return None
