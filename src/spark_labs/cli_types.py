"""What every ``spark-labs`` command checks before it starts anything: argparse types for numbers with a sane
range (and the reason for it), ports, http(s) URLs, readable files and writable outputs; a parser whose errors
are one line; and saving finished results somewhere else when their place fails at the end.

A refused argument is one line on stderr, ``spark-labs CMD: error: argument --flag: what is wrong; what to do``,
and exit status 2 — before an engine, a model load or a server starts.
"""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line (``prog: error: message``), exit status 2; its
    sub-command parsers are of the same class. ``--help`` still prints the full usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


def check_model_env(parser: argparse.ArgumentParser, profile: str | None = None, lab: str | None = None,
                    loadable: bool = True) -> None:
    """Refuse (one line, exit 2) a ``SPARK_LABS_PROFILE`` / ``SPARK_LABS_MODEL`` that the command could not use,
    and — unless ``loadable`` is False (a command that only prints what it would run) — a model of lab ``lab``
    that cannot be loaded here: not cached while offline, gated without access, no such id. That check takes
    seconds; without it transformers finds out a minute later and says so in a raw traceback."""
    from .errors import ProfileError
    from .profiles import model_env_problem, model_problem

    try:
        problem = model_problem(profile, lab) if loadable else model_env_problem(profile)
    except ProfileError as exc:  # an unknown SPARK_LABS_PROFILE
        problem = str(exc)
    if problem:
        parser.error(problem)


def check_model_arg(parser: argparse.ArgumentParser, flag: str, model: str) -> None:
    """Refuse (one line, exit 2) a model folder or HF id given as ``flag`` that cannot be loaded here."""
    from .errors import ModelNotFoundError
    from .models.availability import locate_model

    try:
        locate_model(model, local_copy=f"pass {flag} <local folder with config.json>")
    except ModelNotFoundError as exc:
        parser.error(f"{flag} {exc}")


# --- numbers ---------------------------------------------------------------------------------------------


def _number(kind: type, low: float, high: float, why: str, low_open: bool = False) -> Callable[[str], float]:
    name = "a whole number" if kind is int else "a number"

    def parse(text: str):
        try:
            value = kind(text)
            if value != value:  # NaN
                raise ValueError(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {name}; give {_range(low, high, low_open)}") from None
        if value <= low if low_open else value < low:
            raise argparse.ArgumentTypeError(f"{text} is too small; give {_range(low, high, low_open)}")
        if value > high:
            raise argparse.ArgumentTypeError(f"{text} is more than {high:g}: {why}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in some messages
    return parse


def _range(low: float, high: float, low_open: bool) -> str:
    return f"a number above {low:g} and at most {high:g}" if low_open else f"{low:g} to {high:g}"


def whole(low: int, high: int, why: str) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high``; ``why`` says why not more."""
    return _number(int, low, high, why)


def wholes(low: int, high: int, why: str, example: str = "1,2,4") -> Callable[[str], list[int]]:
    """An argparse type: one or more whole numbers from ``low`` to ``high``, comma-separated."""
    one = whole(low, high, why)

    def parse(text: str) -> list[int]:
        parts = [part.strip() for part in text.split(",") if part.strip()]
        if not parts:
            raise argparse.ArgumentTypeError(f"{text!r}: give whole numbers separated by commas, e.g. {example}")
        return [one(part) for part in parts]

    return parse


def real(low: float, high: float, why: str, low_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a number from ``low`` (above it when ``low_open``) to ``high``."""
    return _number(float, low, high, why, low_open)


# The ranges the commands share, each with the reason for its ceiling.
_STREAMS_WHY = ("one client process holds a connection per stream, and long before that it measures itself rather "
                "than the server (`spark-labs bench overhead` shows where it falls behind)")
STREAMS = whole(1, 4096, _STREAMS_WHY)
STREAM_LEVELS = wholes(1, 4096, _STREAMS_WHY, "1,2,4,8")  # comma list: a sweep's levels
REQUESTS = whole(1, 100_000, "every request's record is kept in memory and written to the report")
TOKENS = whole(1, 131_072, "longer than the context of any model in the course (128k tokens)")
REPEATS = whole(1, 1000, "a thousand repeats already pin the mean down; more only takes longer")
SECONDS = real(0, 86_400, "more than a day", low_open=True)
MILLISECONDS = real(0, 60_000, "more than a minute per token is no server to calibrate against")


def cpu_threads(text: str) -> int:
    """An argparse type: threads from 1 to this machine's cores."""
    cores = os.cpu_count() or 1
    return whole(1, cores, f"this machine has {cores} cores; more threads than cores only wait for each other")(text)


# --- ports and URLs --------------------------------------------------------------------------------------


def port(text: str) -> int:
    """An argparse type: a TCP port, 1 to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port; give a number from 1 to 65535") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port; give a number from 1 to 65535")
    return value


def port_or_auto(text: str) -> int | str:
    """An argparse type: a TCP port, or ``auto`` (also ``0``) for any free one."""
    if text.strip().lower() in ("auto", "0"):
        return "auto"
    try:
        return port(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port; give a number from 1 to 65535, or 'auto' for "
                                         "any free port") from None


def http_url(text: str) -> str:
    """An argparse type: an http:// or https:// URL with a host (and a valid port, if any); no trailing slash."""
    parts = urlsplit(text.strip())
    example = "http://127.0.0.1:8000"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL; give one like {example}")
    try:
        parts.port  # noqa: B018 - raises ValueError when out of range or not a number
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} has no valid port (1 to 65535); {example}") from None
    return text.strip().rstrip("/")


def unreachable(url: str, timeout: float = 3.0) -> str | None:
    """Why nothing answers at ``url``'s host and port (a TCP connect), or None when something does."""
    parts = urlsplit(url)
    address = (parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
    try:
        with socket.create_connection(address, timeout=timeout):
            return None
    except OSError as exc:
        why = exc.strerror or type(exc).__name__.replace("Error", " error").lower()
        return f"nothing answers at {address[0]}:{address[1]} ({why.lower()})"


def listen_problem(host: str, port_: int) -> str | None:
    """Why this process could not listen on ``host:port_`` (taken, or no such address here), or None."""
    try:
        infos = socket.getaddrinfo(host, port_, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"{host!r} is not an address of this machine ({exc.strerror or exc})"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port_} on {host} is taken by another process (`lsof -i :{port_}` names it)"
            return f"cannot listen on {host}:{port_} ({exc.strerror or exc})"
    return None


# --- files -----------------------------------------------------------------------------------------------


def readable_file(text: str) -> Path:
    """An argparse type: an existing file this process can read."""
    path = Path(text).expanduser()
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file" + (" (a folder)" if path.is_dir() else ""))
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"{text}: cannot read it ({exc.strerror or exc})") from None
    return path


MIN_FREE_BYTES = 16 * 2**20  # reports with every request's record are a few MB


def _enough_space(path: Path, text: str) -> None:
    free = shutil.disk_usage(path).free
    if free < MIN_FREE_BYTES:
        raise argparse.ArgumentTypeError(f"{text}: only {free // 1024} KiB free there; free some space or write "
                                         "somewhere else")


def output_dir(text: str) -> Path:
    """An argparse type: a folder results will be written into, created now and test-written, so that a
    place that cannot take them fails before the work and not after it."""
    path = Path(text).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path) as probe:
            probe.write(b"x")
            probe.flush()
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"{text}: cannot write there ({exc.strerror or exc}); pick a folder you "
                                         "can write to") from None
    _enough_space(path, text)
    return path


def output_file(text: str) -> Path:
    """An argparse type: a file results will be written to: its folder must exist and take a file, and an
    existing file must open for appending (nothing in it changes now)."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name in it")
    try:
        if path.exists():
            with path.open("ab"):
                pass
        else:
            if not path.parent.is_dir():
                raise argparse.ArgumentTypeError(f"{text}: the folder {path.parent} does not exist; create it or "
                                                 "give another path")
            with tempfile.TemporaryFile(dir=path.parent) as probe:
                probe.write(b"x")
                probe.flush()
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"{text}: cannot write there ({exc.strerror or exc}); pick a place you "
                                         "can write to") from None
    if path.is_file() or not path.exists():
        _enough_space(path.parent, text)
    return path


def save_results(place: Path, write: Callable[[Path], object], prog: str) -> bool:
    """``write(place)``; when that fails (disk full, folder gone), the finished results are written to a fresh
    folder under the temp dir instead, and one line on stderr says where. True when ``place`` took them."""
    try:
        write(place)
        return True
    except OSError as exc:
        failure = f"could not write {place} ({exc.strerror or exc})"
    for root in (None, Path.home()):
        try:
            fallback = Path(tempfile.mkdtemp(prefix="spark-labs-results-", dir=root)) / (place.name or "results")
            write(fallback)
        except OSError:
            continue
        print(f"{prog}: {failure}; the finished results are in {fallback}", file=sys.stderr)
        return False
    print(f"{prog}: {failure}, nor under {tempfile.gettempdir()} or {Path.home()}: the results are lost",
          file=sys.stderr)
    return False
