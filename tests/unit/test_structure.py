"""How the library's modules depend on each other (read from the source, nothing is run)."""

from __future__ import annotations

import ast
from pathlib import Path

import spark_labs

PACKAGE = Path(spark_labs.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


class _Imports(ast.NodeVisitor):
    """Every spark_labs module a file imports at run time, function-local imports included (a cycle
    through a local import still ties the two modules together); ``if TYPE_CHECKING:`` blocks excluded."""

    def __init__(self, package: str):
        self.package = package
        self.found: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.update(alias.name for alias in node.names if alias.name.startswith("spark_labs"))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")[: len(self.package.split(".")) - node.level + 1]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        if module.startswith("spark_labs"):
            self.found.add(module)
            self.found.update(f"{module}.{alias.name}" for alias in node.names)  # `from . import submodule`


def _import_graph() -> dict[str, set[str]]:
    """Module -> the spark_labs modules it imports. A package's ``__init__`` is a node like any module (importing
    ``spark_labs.bench`` runs it); a module importing a package it sits inside is left out: that is how Python
    imports work, not a design cycle."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path)
        visitor = _Imports(name if path.name == "__init__.py" else name.rsplit(".", 1)[0])
        visitor.visit(ast.parse(path.read_text()))
        graph[name] = visitor.found
    return {m: {d for d in deps if d in graph and d != m and not m.startswith(d + ".")}
            for m, deps in graph.items()}


def _cycle_from(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    stack = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for dep in graph[node]:
            if dep == start:
                return [*path, dep]
            if dep not in seen:
                seen.add(dep)
                stack.append((dep, [*path, dep]))
    return None


def test_no_import_cycles_anywhere_in_the_package():
    """Function-local imports count: a cycle through one still ties two modules together (clients <-> load went
    round through run_sync once; build <-> prereq through a local import; memory reached up into engines)."""
    graph = _import_graph()
    cycles = [cycle for module in sorted(graph) if (cycle := _cycle_from(module, graph))]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_run_sync_works_inside_a_running_loop():
    """A notebook cell runs inside the kernel's event loop; run_sync must still block and return."""
    import asyncio

    from spark_labs.event_loop import run_sync

    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    async def cell() -> int:
        return run_sync(answer)

    assert run_sync(answer) == 42
    assert asyncio.run(cell()) == 42


def test_make_test_runs_ruff_before_pytest():
    """`make test` (what CI runs) fails on a lint finding before the long test run starts."""
    makefile = (PACKAGE.parents[1] / "Makefile").read_text()
    recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    commands = [line.strip().lstrip("@") for line in recipe]
    ruff = next(i for i, c in enumerate(commands) if c.endswith("-m ruff check src tests"))
    pytest_ = next(i for i, c in enumerate(commands) if "-m pytest" in c)
    assert ruff < pytest_
    assert not commands[ruff].startswith("-")  # make would ignore its failure


def _room(module: str) -> str:
    """The package (or top-level module) a module belongs to: spark_labs.bench.load -> spark_labs.bench."""
    return ".".join(module.split(".")[:2])


def test_no_import_cycles_between_packages():
    """Rooms depend one way: a package that uses another is never used back by it (bench <-> speculative went
    round through the bench CLI once)."""
    rooms: dict[str, set[str]] = {}
    for module, deps in _import_graph().items():
        rooms.setdefault(_room(module), set()).update(_room(d) for d in deps if _room(d) != _room(module))
    for room in list(rooms.values()):
        for dep in room:
            rooms.setdefault(dep, set())
    cycles = [cycle for room in sorted(rooms) if (cycle := _cycle_from(room, rooms))]
    assert not cycles, "package cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def _subpackages() -> list[str]:
    return sorted(_module_name(p) for p in PACKAGE.rglob("__init__.py"))


def test_every_package_declares_its_public_surface():
    """Each package's __init__ says what it offers (__all__), every name there resolves, and no exported name
    shadows a submodule (``from .catalog import catalog`` would make ``spark_labs.models.catalog`` a function)."""
    import importlib

    problems = []
    for name in _subpackages():
        package = importlib.import_module(name)
        exported = getattr(package, "__all__", None)
        if not exported:
            problems.append(f"{name} has no __all__")
            continue
        submodules = {p.stem for p in Path(package.__file__).parent.glob("*.py")} | {
            p.parent.name for p in Path(package.__file__).parent.glob("*/__init__.py")}
        problems += [f"{name}.{n} does not resolve" for n in exported if not hasattr(package, n)]
        problems += [f"{name} exports {n!r}, also a submodule's name" for n in exported if n in submodules
                     and name != "spark_labs"]
    assert not problems, "; ".join(problems)


def _solution_imports() -> list[tuple[str, str, str]]:
    """(notebook, module, name) for every ``from spark_labs... import name`` in the solutions' code cells."""
    import json

    found = []
    for notebook in sorted((PACKAGE.parents[1] / "solutions").glob("*.ipynb")):
        for cell in json.loads(notebook.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "\n".join(line for line in "".join(cell["source"]).splitlines()
                               if not line.lstrip().startswith(("%", "!")))
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("spark_labs"):
                    found += [(notebook.name, node.module, alias.name) for alias in node.names]
                elif isinstance(node, ast.Import):
                    found += [(notebook.name, alias.name, "") for alias in node.names
                              if alias.name.startswith("spark_labs.")]
    return found


def test_solutions_import_only_the_public_surface():
    """Notebooks (and learners' saved copies of them) depend on package surfaces only, so modules inside a
    package can move without breaking a lab: ``from spark_labs.bench import run_load``, never
    ``from spark_labs.bench.load import run_load``."""
    import importlib

    surfaces = {"spark_labs", *_subpackages(), *(f"spark_labs.{m}" for m in spark_labs.PUBLIC_MODULES)}
    imports = _solution_imports()
    assert len(imports) > 50  # the scan sees the notebooks' imports at all
    wrong = [f"{nb}: {module} {name}" for nb, module, name in imports
             if module not in surfaces or name not in importlib.import_module(module).__all__]
    assert not wrong, "solutions import past a package's surface: " + "; ".join(wrong)


def test_old_module_names_still_import_with_a_warning():
    """A learner's notebook saved before the 0.2 layout still runs; the warning names the new place."""
    import importlib
    import sys
    import warnings

    for old, new in [("spark_labs.checkpoint", "spark_labs.notebooks.checkpoints"),
                     ("spark_labs.spec.runner", "spark_labs.speculative.runner"),
                     ("spark_labs.build.measure", "spark_labs.variants.measure")]:
        sys.modules.pop(old, None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module = importlib.import_module(old)
        assert module is importlib.import_module(new)
        assert module.__spec__.name == new  # the real module keeps its own identity
        assert any(new in str(w.message) and issubclass(w.category, FutureWarning) for w in caught)
    from spark_labs.checkpoint import checkpoint  # the form learners' notebooks use
    assert callable(checkpoint)
