"""``make lab``: JupyterLab on labs/, opened on the course map, with the two settings the labs rely on.

* ``saveState``: widget state is saved with the notebook, so a saved notebook (an instructor reopening a
  submission) redraws the quiz instead of "Error displaying widget: model not found".
* Markdown opens as its preview, so the course map reads as a page, not as source.

An untouched lab must not open as "modified": JupyterLab rewrites the kernel metadata (display name,
``language_info`` down to the Python patch version) as soon as the kernel starts, and any difference marks
the notebook dirty. The generated labs cannot know the learner's interpreter, so :class:`CourseContents`
fills in, when a notebook is opened, exactly what this environment's kernel will report; the files on disk
stay machine-independent.

The settings go into the environment's ``share/jupyter/lab/settings/overrides.json`` (JupyterLab's
documented place for defaults of one installation), merged with what is there. As root (containers run
as root) Jupyter refuses to start without ``--allow-root``, so it is added when the user id is 0.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

OVERRIDES = {
    # JupyterLab's default, stated because an earlier course version turned it on: saved widget state made
    # every notebook with a progress bar open as modified and, once reopened, show "Error displaying widget:
    # model not found" for each bar (measured in JupyterLab 4 with all cells rendered); without saved state a
    # finished bar simply stays blank.
    "@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": False},
    "@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"markdown": "Markdown Preview"}},
    # A lab machine may have no internet: no news or update checks, and no pop-up asking about them.
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}
COURSE_MAP = "README.md"


def write_overrides(prefix: Path = Path(sys.prefix)) -> Path:
    """Merge :data:`OVERRIDES` into ``prefix``'s JupyterLab overrides.json; return its path."""
    path = prefix / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    current = json.loads(path.read_text()) if path.exists() else {}
    for plugin, settings in OVERRIDES.items():
        current.setdefault(plugin, {}).update(settings)
    path.write_text(json.dumps(current, indent=2) + "\n")
    return path


def jupyter_command(labs: Path, uid: int | None = None) -> list[str]:
    """The command that serves ``labs`` and opens its course map first."""
    uid = os.getuid() if uid is None else uid
    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={labs}",
               f"--ServerApp.contents_manager_class={__name__}.CourseContents",
               f"--LabApp.default_url=/lab/tree/{COURSE_MAP}"]  # the URL printed and opened
    return command + (["--allow-root"] if uid == 0 else [])


def fill_kernel_metadata(metadata: dict) -> None:
    """Give a python3 notebook this environment's kernelspec, and a generated one (no interpreter version) its
    language_info too; a notebook that names a version keeps it as saved.

    JupyterLab rewrites the kernelspec to the running kernel's as it starts it, and a notebook whose kernelspec
    it rewrote opens marked as modified: a solution recorded by nbclient says "Python 3", the kernel here
    "Python 3 (ipykernel)". Matching it at load leaves an unchanged notebook unmodified."""
    spec = metadata.get("kernelspec") or {}
    if spec.get("name") != "python3":
        return
    from ipykernel.ipkernel import IPythonKernel
    from jupyter_client.kernelspec import KernelSpecManager

    local = KernelSpecManager().get_kernel_spec("python3")
    metadata["kernelspec"] = {"display_name": local.display_name, "language": local.language, "name": "python3"}
    if "version" not in (metadata.get("language_info") or {}):
        metadata["language_info"] = dict(IPythonKernel.language_info)


def _course_contents_class():
    from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager

    class CourseContents(AsyncLargeFileManager):
        """Jupyter's default contents manager; notebooks open with this kernel's metadata filled in."""

        async def get(self, path, content=True, type=None, format=None, **kwargs):  # noqa: A002 - Jupyter's names
            model = await super().get(path, content=content, type=type, format=format, **kwargs)
            if content and model.get("type") == "notebook":
                fill_kernel_metadata(model["content"]["metadata"])
            return model

    return CourseContents


def __getattr__(name: str):  # Jupyter imports CourseContents by name; jupyter_server loads only then
    if name == "CourseContents":
        return _course_contents_class()
    raise AttributeError(name)


def open_lab(labs: Path) -> int:
    if not (labs / COURSE_MAP).exists():
        print(f"no course map at {labs / COURSE_MAP}: run this from the repository root (or pass --labs)")
        return 1
    write_overrides()
    command = jupyter_command(labs.resolve())
    os.execv(command[0], command)  # Jupyter takes over the terminal (Ctrl-C stops it)
