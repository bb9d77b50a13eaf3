"""Inside the learner's kernel: take the exercise's inputs, hand its outputs back as plain data, answer calls.

The judge (:mod:`.judge`) imports this module into the learner's kernel and calls these three functions there.
Nothing here is trusted: the learner's code runs in the same process and may replace any of it. That gains
nothing, because the judge accepts only JSON text and rebuilds values itself (:mod:`.exchange`); replacing
these functions only changes which answer the learner hands in.
"""

from __future__ import annotations

import inspect
import itertools
import json
import traceback

from .exchange import NotPlain, imported, to_plain, unpack

MAX_GENERATED = 100_000   # items a learner's generator may yield in one call before the rest is cut off


def resolve(namespace: dict, path: str):
    """``namespace[name]`` or an attribute path below it (``mine.stop``)."""
    name, *attributes = path.split(".")
    value = namespace[name]
    for attribute in attributes:
        value = getattr(value, attribute)
    return value


def receive(namespace: dict, payload: str) -> None:
    namespace.update({name: imported(value) for name, value in unpack(payload).items()})


def _encode(kind: str, value):
    if kind == "function":
        if not callable(value):
            raise NotPlain(f"is a {type(value).__name__}, not a function")
        return {"callable": True}
    if kind == "object":
        return {"type": type(value).__name__}
    if kind == "quantized_model":
        config = getattr(getattr(value, "config", None), "quantization_config", None)
        if config is not None and not isinstance(config, dict):
            config = config.to_dict()
        return to_plain({"quantization_config": config})
    return to_plain(value)


def send(namespace: dict, specs: list[list[str]]) -> str:
    """JSON: ``{"values": {name: data}, "missing": [...], "problems": {name: why}}`` for ``[name, kind]`` specs."""
    values, missing, problems = {}, [], {}
    for path, kind in specs:
        try:
            value = resolve(namespace, path)
        except (KeyError, AttributeError):
            missing.append(path)
            continue
        if value is None and kind != "value":
            missing.append(path)
            continue
        try:
            values[path] = _encode(kind, value)
        except Exception as exc:  # noqa: BLE001 - whatever the value does, the judge gets a sentence
            problems[path] = f"{type(exc).__name__}: {exc}"[:500]
    return json.dumps({"values": values, "missing": missing, "problems": problems}, allow_nan=False)


def _raised(exc: BaseException, items=None) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (line {last[0].lineno} of your code)" if last else ""
    report = {"type": type(exc).__name__, "message": str(exc)[:2000], "where": where,
              "builtin": type(exc).__module__ == "builtins"}
    if items is not None:
        report["items"] = items
    return json.dumps({"raised": report}, allow_nan=False)


def call(namespace: dict, path: str, payload: str) -> str:
    """Call the learner's function at ``path`` with the judge's arguments; JSON ``{"value": data}`` or
    ``{"raised": {...}}``. A generator's items are collected here (they could not cross one by one), and an
    exception it raises after some items travels with the items it yielded before."""
    try:
        args, kwargs = unpack(payload)
        result = resolve(namespace, path)(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the learner's exception is part of the answer
        return _raised(exc)
    if inspect.isgenerator(result):
        items = []
        try:
            for item in itertools.islice(result, MAX_GENERATED):
                items.append(to_plain(item))
        except Exception as exc:  # noqa: BLE001
            return _raised(exc, items)
        return json.dumps({"generated": items}, allow_nan=False)
    try:
        return json.dumps({"value": to_plain(result)}, allow_nan=False)
    except NotPlain as exc:
        return json.dumps({"raised": {"type": "NotPlain", "message": f"{path} returned {exc}", "where": "",
                                      "builtin": False}})
