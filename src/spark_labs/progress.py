"""Progress bars that leave nothing dead behind in a saved notebook.

In a kernel tqdm draws an ipywidget. JupyterLab saves notebooks without widget state (its default, which
``make lab`` keeps: saved state made every notebook with a bar open as modified), so every bar a finished
run left behind reads "Error displaying widget: model not found" once the notebook is reopened.

The bar here is tqdm's own text bar, drawn as one plain-text output under a display id and redrawn in place
(at most ten times a second, tqdm's own pacing): no widget, no comm, nothing the saved file cannot show.
When it closes it leaves nothing where it finished and was not asked to stay (``leave=False``), and its
last line where it stopped early or was asked to stay. Outside a kernel it is tqdm's terminal bar.

transformers' own bars ("Loading weights") go through it as well, the learner's own ``from_pretrained`` calls
included: importing :mod:`spark_labs.notebooks` in a kernel (every lab's first cell does) routes them as soon as
transformers is imported (:func:`route_transformers_bars_once_imported`), without importing it earlier.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import io
import sys
from functools import cache

from tqdm.std import tqdm as _TextBar

__all__ = ["NotebookBar", "progress_bar", "route_transformers_bars_once_imported"]


@cache
def in_kernel() -> bool:
    """True inside a Jupyter kernel (where a display id can be updated), False in a terminal or a script."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class NotebookBar(_TextBar):
    """tqdm's text bar, displayed as ``text/plain`` under a display id instead of written to a terminal."""

    monitor_interval = 0  # no monitor thread: the bar redraws when it moves, as tqdm's pacing decides

    def __init__(self, *args, **kwargs):
        self._handle = None
        kwargs.setdefault("ncols", 100)  # there is no terminal to measure
        # a bar of fixed width: sized to fill ncols, its length would change with the rate's digits, and a
        # finished bar kept in a recording would differ from run to run where nothing else did
        kwargs.setdefault("bar_format", "{l_bar}{bar:30}{r_bar}")
        kwargs.setdefault("ascii", False)  # a notebook shows Unicode; tqdm would judge by the file below
        super().__init__(*args, file=io.StringIO(), **kwargs)  # tqdm's own cursor writes go nowhere

    def display(self, msg=None, pos=None):
        if msg == "" and self.total and self.n < self.total:
            msg = None  # closing a bar that stopped early: keep its last line, it says how far it got
        bundle = {"text/plain": str(self) if msg is None else msg}
        if self._handle is None:
            from IPython.display import display

            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)
        return True


def progress_bar(iterable=None, **options):
    """``tqdm(iterable, **options)``: a :class:`NotebookBar` in a kernel, tqdm's terminal bar elsewhere."""
    if in_kernel():
        return NotebookBar(iterable, **options)
    from tqdm.auto import tqdm

    return tqdm(iterable, **options)


def _route(factory, args, kwargs):
    from tqdm.auto import tqdm

    return progress_bar(*args, **kwargs) if factory is tqdm else factory(*args, **kwargs)


def _hook(logging) -> None:
    """Make transformers (its ``utils.logging`` module) draw its bars with :func:`progress_bar`."""
    if hasattr(logging, "set_tqdm_hook"):  # transformers >= 5
        logging.set_tqdm_hook(_route)


_TRANSFORMERS_LOGGING = "transformers.utils.logging"


class _RouteWhenImported(importlib.abc.MetaPathFinder):
    """Finds nothing itself: when transformers' logging module is about to load, it hands the import to the
    usual finders and sets the hook on the module once it has run."""

    def find_spec(self, fullname, path, target=None):
        if fullname != _TRANSFORMERS_LOGGING:
            return None
        sys.meta_path.remove(self)  # once only; also keeps the lookup below from coming back here
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        run_module = spec.loader.exec_module

        def run_then_route(module):
            run_module(module)
            _hook(module)

        spec.loader.exec_module = run_then_route
        return spec


def route_transformers_bars_once_imported() -> None:
    """In a kernel, make transformers draw its bars with :func:`progress_bar`: now if it is loaded, else right
    after it is (without importing it earlier)."""
    if not in_kernel():
        return
    if _TRANSFORMERS_LOGGING in sys.modules:
        _hook(sys.modules[_TRANSFORMERS_LOGGING])
    elif not any(isinstance(finder, _RouteWhenImported) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RouteWhenImported())
