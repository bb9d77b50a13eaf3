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
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path)
        visitor = _Imports(name if path.name == "__init__.py" else name.rsplit(".", 1)[0])
        visitor.visit(ast.parse(path.read_text()))
        graph[name] = visitor.found
    packages = {_module_name(p) for p in PACKAGE.rglob("__init__.py")}
    # Edges into a package's __init__ are left out: a submodule importing its own package is how Python
    # imports work, not a design cycle.
    return {m: {d for d in deps if d in graph and d != m and d not in packages}
            for m, deps in graph.items() if m not in packages}


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


def test_no_import_cycles_between_bench_modules():
    """clients <-> load went round through run_sync once; a neutral module (coroutines) broke it."""
    graph = _import_graph()
    cycles = [cycle for module in sorted(graph) if module.startswith("spark_labs.bench.")
              and (cycle := _cycle_from(module, graph))]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_run_sync_works_inside_a_running_loop():
    """A notebook cell runs inside the kernel's event loop; run_sync must still block and return."""
    import asyncio

    from spark_labs.coroutines import run_sync

    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    async def cell() -> int:
        return run_sync(answer)

    assert run_sync(answer) == 42
    assert asyncio.run(cell()) == 42


def _code_strings(path: Path) -> list[tuple[int, str]]:
    """String constants in a module's code, docstrings left out."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_the_benchmark_harness_names_no_engine():
    """Engine facts (flags, dtypes, cache-reset routes, metric names, claims) live in the registry's
    EngineSpec, so adding an engine touches the registry, its tests and its docs only."""
    from spark_labs.engines import ENGINES

    found = [f"{path.name}:{line} {text!r}" for path in sorted((PACKAGE / "bench").glob("*.py"))
             for line, text in _code_strings(path) if text.lower() in ENGINES]
    assert not found, "engine names in spark_labs.bench code: " + ", ".join(found)


def test_make_test_runs_ruff_before_pytest():
    """`make test` (what CI runs) fails on a lint finding before the long test run starts."""
    makefile = (PACKAGE.parents[1] / "Makefile").read_text()
    recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    commands = [line.strip().lstrip("@") for line in recipe]
    ruff = next(i for i, c in enumerate(commands) if c.endswith("-m ruff check src tests"))
    pytest_ = next(i for i, c in enumerate(commands) if "-m pytest" in c)
    assert ruff < pytest_
    assert not commands[ruff].startswith("-")  # make would ignore its failure
