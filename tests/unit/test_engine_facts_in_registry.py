"""Every per-engine fact lives in the registry (spark_labs.engines.registry), so adding an engine touches the
registry, its tests and its docs only: no other module of the package names an engine in its code."""

from __future__ import annotations

import ast
from pathlib import Path

import spark_labs
from spark_labs.engines import ENGINES

PACKAGE = Path(spark_labs.__file__).parent
REGISTRY = Path("engines/registry.py")
# The one exception: which engines a profile runs, in the order the labs take them (the first is a lab's
# default engine). That is the profile's choice, and profiles.py sits below engines/ (the launcher reads the
# profile), so it cannot ask the registry without an import cycle.
PROFILE_ENGINE_LISTS = (Path("profiles.py"), "engines")


def _docstrings(tree: ast.AST) -> set[int]:
    return {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}


def _allowed(module: Path, tree: ast.AST) -> set[int]:
    """String constants inside the profile's engine lists (``engines=(...)`` in profiles.py)."""
    file, keyword = PROFILE_ENGINE_LISTS
    if module != file:
        return set()
    return {id(const) for node in ast.walk(tree) if isinstance(node, ast.keyword) and node.arg == keyword
            for const in ast.walk(node.value)}


def names_an_engine(text: str) -> bool:
    """An engine key as the whole string, any case ("vllm", "vLLM"), or a comma list of them ("llamacpp,vllm").
    Prose that mentions an engine ("start vLLM with ...") is documentation, like a docstring; so is
    "transformers" the library or "vllm bench serve" the tool, which is why words inside a longer string
    are not matched."""
    parts = [part.strip().lower() for part in text.split(",")]
    return all(part in ENGINES for part in parts)


def engine_names_in_code(package: Path = PACKAGE) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        module = path.relative_to(package)
        if module == REGISTRY:
            continue
        tree = ast.parse(path.read_text())
        skip = _docstrings(tree) | _allowed(module, tree)
        found += [f"{module}:{node.lineno} {node.value!r}" for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
                  and names_an_engine(node.value)]
    return found


def test_no_module_but_the_registry_names_an_engine():
    found = engine_names_in_code()
    assert not found, "engine names outside engines/registry.py (make them EngineSpec facts): " + ", ".join(found)


def test_the_rule_matches_names_not_prose():
    assert names_an_engine("vllm") and names_an_engine("vLLM") and names_an_engine("llamacpp, vllm")
    assert not names_an_engine("vllm bench serve") and not names_an_engine("ollama-chat")
    assert not names_an_engine("the installed transformers/gguf versions") and not names_an_engine("")
