"""Progress bars that leave no widget behind in a saved notebook.

In a notebook tqdm draws an ipywidget. JupyterLab saves notebooks without widget state (its default, which
``make lab`` keeps: saved state made every notebook with a bar open as modified), so each bar a finished run
left behind reads "Error displaying widget: model not found" once the notebook is reopened. The bar here is
that same widget while it runs; when it closes, its output is replaced through its display id by plain
text: the last line where it stopped early or was asked to stay (``leave=True``), nothing otherwise. Outside
a notebook it is tqdm's own text bar.

The course's model loaders route transformers' own bars ("Loading weights") through it as well
(:func:`route_transformers_bars`).
"""

from __future__ import annotations

from functools import cache

# tqdm.notebook imports IPython and ipywidgets: everything here is imported on first use, so modules that
# import this one stay light for the command line.


@cache
def _notebook_bar_class() -> type | None:
    """tqdm's notebook bar, subclassed to end as text, when tqdm draws widgets here (in a kernel); else None."""
    from tqdm.auto import tqdm

    try:
        from tqdm.notebook import tqdm as notebook_tqdm
    except ImportError:  # no IPython / ipywidgets: terminals only
        return None
    if not issubclass(tqdm, notebook_tqdm):
        return None

    class TextWhenDone(tqdm):
        """Displayed under a display id, so that closing it can replace the widget."""

        def __init__(self, *args, **kwargs):
            from IPython.display import display

            super().__init__(*args, **{**kwargs, "display": False})
            self._handle = None if self.disable else display(self.container, display_id=True)
            self.displayed = True

        def close(self):
            if self.disable or self._handle is None:
                return super().close()
            stopped_early = bool(self.total and self.n < self.total)
            leave = self.leave
            super().close()
            self._handle.update({"text/plain": str(self) if stopped_early or leave else ""}, raw=True)
            self._handle = None

    return TextWhenDone


def progress_bar(iterable=None, **options):
    """A tqdm bar (``tqdm(iterable, **options)``) that ends as text in a notebook (see the module)."""
    from tqdm.auto import tqdm

    return (_notebook_bar_class() or tqdm)(iterable, **options)


def _route(factory, args, kwargs):
    from tqdm.auto import tqdm

    return progress_bar(*args, **kwargs) if factory is tqdm else factory(*args, **kwargs)


def route_transformers_bars() -> None:
    """Make transformers draw its bars with :func:`progress_bar` (in a notebook; a no-op elsewhere)."""
    if _notebook_bar_class() is None:
        return
    from transformers.utils import logging

    if hasattr(logging, "set_tqdm_hook"):  # transformers >= 5
        logging.set_tqdm_hook(_route)
