"""What may cross from a learner's worker to the judge: plain data, rebuilt on the judge's side by trusted code.

A learner's exercise runs in its own kernel (see :mod:`.judge`); what it produced reaches the kernel that
decides the grade only as JSON built from

* ``None``, booleans, integers, floats (NaN and infinities included), strings;
* lists, tuples, sets and dicts of those (dict keys of any of those types);
* NumPy numbers and arrays of numbers, pandas Series and DataFrames;
* instances of the course's own dataclasses (``spark_labs.*``: a report, a request record), rebuilt field by
  field by their own class.

Anything else (an object with a forged ``__eq__``, a model that reports a footprint, a module) cannot cross:
:class:`NotPlain` says what was found and what to return instead. Decoding never runs code from the learner's
side: tags only select one of the constructors above, and a dataclass must live in ``spark_labs``.

The other direction (the judge sending an exercise its inputs) uses pickle: the judge's values are the
reference's own, and the learner's side may read them freely.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
import json
import math
import pickle

MAX_ITEMS = 5_000_000   # values in one payload: a runaway answer stops here instead of filling memory
MAX_DEPTH = 64
TRUSTED_PACKAGE = "spark_labs."


@dataclasses.dataclass(frozen=True)
class ModuleRef:
    """A module among an exercise's inputs, sent by name (modules cannot be pickled)."""

    name: str


class NotPlain(TypeError):
    """A value that cannot cross to the judge; the message names its type and what crosses instead."""


class Budget:
    def __init__(self) -> None:
        self.left = MAX_ITEMS

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise NotPlain(f"the value holds more than {MAX_ITEMS:,} items: return a summary instead")


def to_plain(value, _budget: Budget | None = None, _depth: int = 0):
    """``value`` as JSON-ready data with type tags; :class:`NotPlain` for anything outside the list above."""
    budget = _budget or Budget()
    budget.spend()
    if _depth > MAX_DEPTH:
        raise NotPlain(f"the value is nested more than {MAX_DEPTH} levels deep")

    def inner(item):
        return to_plain(item, budget, _depth + 1)

    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if type(value) in (int, bool) else int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else {"__float__": repr(float(value))}
    if isinstance(value, list):
        return [inner(item) for item in value]
    if isinstance(value, tuple):
        return {"__tuple__": [inner(item) for item in value]}
    if isinstance(value, (set, frozenset)):
        return {"__set__": [inner(item) for item in value]}
    if isinstance(value, dict):
        return {"__dict__": [[inner(k), inner(v)] for k, v in value.items()]}
    numpy = _numpy_plain(value, inner)
    if numpy is not None:
        return numpy
    pandas = _pandas_plain(value, inner)
    if pandas is not None:
        return pandas
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        if not cls.__module__.startswith(TRUSTED_PACKAGE):
            raise NotPlain(f"a {cls.__name__} (a dataclass defined outside the course library) cannot be graded: "
                           f"return plain numbers, strings, lists, dicts or tables")
        # Fields named _x are caches by the course's convention: rebuilt on demand, never sent.
        return {"__dataclass__": f"{cls.__module__}:{cls.__qualname__}",
                "fields": {f.name: inner(getattr(value, f.name)) for f in dataclasses.fields(value)
                           if not f.name.startswith("_")}}
    raise NotPlain(f"a {type(value).__module__}.{type(value).__qualname__} object cannot be graded: return plain "
                   f"numbers, strings, lists, dicts or tables")


def _numpy_plain(value, inner):
    numpy = _module("numpy")
    if numpy is None:
        return None
    if isinstance(value, numpy.generic):
        return inner(value.item())
    if isinstance(value, numpy.ndarray):
        if value.dtype.kind not in "biuf":
            raise NotPlain(f"a NumPy array of {value.dtype} cannot be graded: only arrays of numbers")
        return {"__ndarray__": str(value.dtype), "shape": list(value.shape),
                "data": [inner(item) for item in value.ravel().tolist()]}
    return None


def _pandas_plain(value, inner):
    pandas = _module("pandas")
    if pandas is None:
        return None
    if isinstance(value, pandas.DataFrame):
        return {"__dataframe__": [inner(column) for column in value.columns],
                "dtypes": [str(dtype) for dtype in value.dtypes],
                "index": inner(list(value.index)), "index_names": inner(list(value.index.names)),
                "columns": [inner(value.iloc[:, i].tolist()) for i in range(value.shape[1])]}
    if isinstance(value, pandas.Series):
        return {"__series__": inner(value.name), "dtype": str(value.dtype), "index": inner(list(value.index)),
                "values": inner(value.tolist())}
    return None


def _module(name: str):
    import sys

    return sys.modules.get(name)  # a module the learner's side never loaded cannot have made the value


def from_plain(data, _depth: int = 0):
    """The value :func:`to_plain` described, built by trusted constructors only."""
    if _depth > MAX_DEPTH:
        raise NotPlain("the value is nested too deep")

    def inner(item):
        return from_plain(item, _depth + 1)

    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if isinstance(data, list):
        return [inner(item) for item in data]
    if not isinstance(data, dict) or len(data) < 1:
        raise NotPlain(f"unexpected data from the learner's side: {type(data).__name__}")
    if "__float__" in data:
        return float(str(data["__float__"]))
    if "__tuple__" in data:
        return tuple(inner(item) for item in data["__tuple__"])
    if "__set__" in data:
        return {inner(item) for item in data["__set__"]}
    if "__dict__" in data:
        return {inner(k): inner(v) for k, v in data["__dict__"]}
    if "__ndarray__" in data:
        import numpy

        return numpy.array([inner(item) for item in data["data"]], dtype=str(data["__ndarray__"])).reshape(
            [int(n) for n in data["shape"]])
    if "__dataframe__" in data:
        return _dataframe(data, inner)
    if "__series__" in data:
        import pandas

        series = pandas.Series(inner(data["values"]), index=inner(data["index"]), name=inner(data["__series__"]))
        return _astype(series, str(data["dtype"]))
    if "__dataclass__" in data:
        return _dataclass(str(data["__dataclass__"]), data["fields"], inner)
    raise NotPlain(f"unexpected data from the learner's side: keys {sorted(data)[:5]}")


def _astype(frame, dtype):
    try:
        return frame.astype(dtype)
    except (TypeError, ValueError):
        return frame  # a dtype pandas cannot rebuild from its name (a category): the values stay as sent


def _dataframe(data, inner):
    import pandas

    names = [inner(column) for column in data["__dataframe__"]]
    columns = [inner(values) for values in data["columns"]]
    frame = pandas.DataFrame(dict(enumerate(columns)), index=inner(data["index"]))
    frame.columns = names
    index_names = inner(data.get("index_names", [None]))
    if len(index_names) == frame.index.nlevels:
        frame.index.names = index_names
    for position, dtype in enumerate(data["dtypes"]):
        frame.isetitem(position, _astype(frame.iloc[:, position], str(dtype)))
    return frame


def _dataclass(path: str, fields, inner):
    module_name, _, qualname = path.partition(":")
    if not module_name.startswith(TRUSTED_PACKAGE):
        raise NotPlain(f"{path} is not one of the course's own types")
    cls = importlib.import_module(module_name)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise NotPlain(f"{path} is not one of the course's own dataclasses")
    values = {name: inner(value) for name, value in fields.items()}
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise NotPlain(f"{path} has no fields {unknown}")
    made = cls(**{name: value for name, value in values.items() if known[name].init})
    for name, value in values.items():
        if not known[name].init:
            object.__setattr__(made, name, value)
    return made


def dumps(value) -> str:
    return json.dumps(to_plain(value), allow_nan=False)


def loads(text: str):
    return from_plain(json.loads(text))


def pack(value) -> str:
    """The judge's side: any picklable value, as text for the learner's side."""
    return base64.b64encode(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)).decode("ascii")


def unpack(text: str):
    """The learner's side: what :func:`pack` sent (only ever from the judge)."""
    return pickle.loads(base64.b64decode(text))


def imported(value):
    """``value``, or the module a :class:`ModuleRef` names."""
    return importlib.import_module(value.name) if isinstance(value, ModuleRef) else value
