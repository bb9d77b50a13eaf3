"""Progress bars that leave nothing dead behind in a saved notebook.

In a kernel tqdm draws an ipywidget. JupyterLab saves notebooks without widget state (its default, which
``make lab`` keeps: saved state made every notebook with a bar open as modified), so every bar a finished
run left behind reads "Error displaying widget: model not found" once the notebook is reopened.

The bar here is tqdm's own text bar, drawn as one plain-text output under a display id and redrawn in place
(at most ten times a second, tqdm's own pacing): no widget, no comm, nothing the saved file cannot show.
When it closes it leaves nothing where it finished and was not asked to stay (``leave=False``), and its
last line where it stopped early or was asked to stay. Outside a kernel it is tqdm's terminal bar.

The course's model loaders route transformers' own bars ("Loading weights") through it as well
(:func:`route_transformers_bars`).
"""

from __future__ import annotations

import io
from functools import cache

from tqdm.std import tqdm as _TextBar

__all__ = ["NotebookBar", "progress_bar", "route_transformers_bars"]


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


def route_transformers_bars() -> None:
    """Make transformers draw its bars with :func:`progress_bar` (in a kernel; a no-op elsewhere)."""
    if not in_kernel():
        return
    from transformers.utils import logging

    if hasattr(logging, "set_tqdm_hook"):  # transformers >= 5
        logging.set_tqdm_hook(_route)
