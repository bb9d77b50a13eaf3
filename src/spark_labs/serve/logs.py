"""Structured logs: one JSON object per line, every line carrying the request id of the request it is about.

The id lives in a context variable set by the request middleware, so code deep in a backend logs it
without passing it around. API keys never reach a log line: only a short, non-reversible key id does.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import random
import sys
import time

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_IDS = random.Random()  # seeded from the OS; its own, so a learner's random.seed() cannot repeat our ids
os.register_at_fork(after_in_child=_IDS.seed)  # a forked worker must not repeat its parent's ids


def new_request_id() -> str:
    """32 random hex characters. Not from uuid4, which asks the kernel for random bytes on every request: an
    id must be unique and say nothing (not how many requests came before it), but it need not be a secret."""
    return f"{_IDS.getrandbits(128):032x}"


LOGGER_NAME = "spark_labs.gateway"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
                "level": record.levelname.lower(), "logger": record.name, "request_id": request_id_var.get(),
                "msg": record.getMessage()}
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in getattr(record, "fields", {}).items())
        return f"{record.levelname:<7} [{request_id_var.get()}] {record.getMessage()} {fields}".rstrip()


class CurrentStderrHandler(logging.StreamHandler):
    """Write to whatever ``sys.stderr`` is when a line is logged, not to the one there at configure time.

    Notebook kernels, pytest's capture and ``contextlib.redirect_stderr`` swap ``sys.stderr``; a handler that
    kept the first object would write to a stream nobody reads any more.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def get_logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)


def configure(json_lines: bool = True, level: str = "info") -> logging.Logger:
    """Install one stderr handler on the gateway logger (idempotent: a second app replaces the formatter)."""
    logger = get_logger()
    logger.setLevel(level.upper())
    logger.propagate = False
    handler = next((h for h in logger.handlers if getattr(h, "_spark_labs", False)), None)
    if handler is None:
        handler = CurrentStderrHandler()
        handler._spark_labs = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    return logger


def log(level: int, message: str, **fields) -> None:
    get_logger().log(level, message, extra={"fields": fields})


def logger_enabled(level: int) -> bool:
    """Would a line at ``level`` be written? (Lets a caller skip building the fields of one that would not.)"""
    return get_logger().isEnabledFor(level)


class LogCollector(logging.Filter):
    """Keep the gateway's log lines as dicts instead of printing them.

    In a notebook every stderr line shows as a red box wherever the cell's output happens to be (in the
    middle of a live chart); collected lines can be shown afterwards as a table. Installed as a logger
    filter that drops what it keeps, so it works whichever handler :func:`configure` installs later.
    """

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict] = []
        self._format = JsonFormatter()

    def filter(self, record: logging.LogRecord) -> bool:
        self.lines.append(json.loads(self._format.format(record)))
        return False

    def start(self) -> LogCollector:
        get_logger().addFilter(self)
        return self

    def stop(self) -> None:
        get_logger().removeFilter(self)

    def __enter__(self) -> LogCollector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def frame(self, columns: tuple[str, ...] = ("level", "msg", "upstream", "kind", "breaker", "reason")):
        """The lines kept so far, one row each (only the columns some line has)."""
        import pandas as pd

        frame = pd.DataFrame(self.lines)
        return frame[[c for c in columns if c in frame]] if not frame.empty else frame
