"""``spark-labs doctor``: profile, hardware, memory and which engines can run here, in one screen."""

from __future__ import annotations

import os
import time

from rich.console import Console
from rich.table import Table

from .cli_types import ArgumentParser
from .engines import ENGINES
from .engines.multinode import SECOND_NODE_ENV
from .engines.readiness import ReadinessReaders, engine_readiness, page_cache_note
from .errors import SparkLabsError
from .hardware.detect import detect_hardware
from .hardware.memory import memory_snapshot
from .models.catalog import catalog
from .profiles import get_profile, model_source


def main(argv: list[str] | None = None) -> int:
    ArgumentParser(prog="spark-labs doctor", description=__doc__).parse_args(argv)
    console = Console()
    profile = get_profile()
    hardware = detect_hardware()
    console.print(f"[bold]profile[/] {profile.name}: {profile.description}")
    model_problems = print_models(console, profile)  # every other command refuses to start without them
    console.print(f"[bold]hardware[/] {hardware.summary()}")
    for line in hardware.advice:
        console.print(f"  • {line}")

    memory = Table(title="memory")
    memory.add_column("reading")
    memory.add_column("value", justify="right")
    snapshot = memory_snapshot()
    for name, value in snapshot.as_rows():
        memory.add_row(name, value)
    console.print(memory)

    engines = Table(title="engines")
    for column in ("engine", "port", "protocol", "here?", "how to get it"):
        engines.add_column(column)
    for spec in ENGINES.values():
        available = spec.availability()
        engines.add_row(spec.display_name, str(spec.default_port), spec.protocol,
                        "[green]yes[/]" if available else "[red]no[/]", available.install_hint)
    console.print(engines)
    if profile.name == "spark":
        print_readiness(console, profile, snapshot, model_problem=model_problems[profile.model_for(None).hf_id])
    node_problems = print_second_node(console) if os.environ.get(SECOND_NODE_ENV) else 0
    return 1 if any(model_problems.values()) or node_problems else 0


def print_second_node(console: Console, runner=None) -> int:
    """Lab 07's two-node checks when ``SPARK_LABS_SECOND_NODE`` names node 2 (an ssh destination): each node
    reachable, the same engine image, the split model's files, the fast link up. Returns how many failed."""
    from .engines.multinode import node_checks, run_command, spark_plan
    from .profiles import split_model

    plan = spark_plan(split_model("spark").hf_id)
    table = Table(title=f"two nodes (lab 07): {plan.head.label} + {plan.nodes[1].label}, link {plan.interface}")
    for column in ("node", "check", "ok", "detail"):
        table.add_column(column)
    rows = node_checks(plan, runner or run_command)
    for row in rows:
        table.add_row(row.node, row.check, "[green]yes[/]" if row.ok else "[red]no[/]", row.detail)
    console.print(table)
    if missing := [row for row in rows if not row.ok]:
        console.print(f"[red]lab 07 cannot start across two nodes: {len(missing)} problem(s) above[/]")
    return len(missing)


def print_models(console: Console, profile) -> dict[str, str | None]:
    """One line for each model the profile's labs load: where it will come from, or why it cannot and the fix
    (a few seconds at most: no download). Returns each model's problem (None: ready) by id."""
    problems: dict[str, str | None] = {}
    for lab in (None, *profile.lab_models):
        model = profile.model_for(lab)
        if model.hf_id in problems:  # SPARK_LABS_MODEL: every lab runs the same model
            continue
        label = f"[bold]model[/] {model.hf_id}" + (f" (lab {lab})" if lab else "")
        try:
            where = model_source(profile, lab)
        except SparkLabsError as exc:
            problems[model.hf_id] = str(exc)
            console.print(f"{label}: [red]not ready[/]: {exc}", soft_wrap=True)
        else:
            problems[model.hf_id] = None
            console.print(f"{label}: [green]ready[/], from {where}", soft_wrap=True)
    return problems


def print_readiness(console: Console, profile, snapshot, readers: ReadinessReaders | None = None,
                    model_problem: str | None = None) -> None:
    """Which engines could start right now (image or install, port, memory, the model), after the page-cache
    note. ``model_problem``: why the profile's model cannot be loaded here (see :func:`print_models`)."""
    if note := page_cache_note(snapshot):
        console.print(f"[yellow]{note}[/]")
    model = profile.model_for(None)
    if model.hf_id not in catalog():
        console.print(f"[yellow]{model.hf_id} is not in spark-labs' model catalog: its size cannot be checked "
                      "offline, so memory needs show as '?'[/]")
    table = Table(title=f"ready to start now? (spark profile, {model.hf_id})")
    for column in ("engine", "runs as", "installed", "port", "needs", "headroom", "without page cache", "ready"):
        table.add_column(column)

    def gb(value: float | None) -> str:
        return "?" if value is None else f"{value / 1e9:.0f} GB"

    for row in engine_readiness(profile, snapshot, readers, model_problem):
        installed = {True: "yes", False: "[red]no[/]", None: "?"}[row.installed]
        verdict = "[green]ready[/]" if row.ready else "[red]no[/]: " + "; ".join(row.problems)
        table.add_row(ENGINES[row.engine].display_name, row.runs_as, installed,
                      "free" if row.port_free else "[red]taken[/]", gb(row.need_bytes), gb(row.headroom_bytes),
                      gb(row.headroom_without_cache_bytes), verdict)
    console.print(table)


def prepare_model_main(argv: list[str] | None = None) -> int:
    ArgumentParser(prog="spark-labs prepare-model",
                   description="Export the embedded GGUF to HF safetensors once.").parse_args(argv)
    from .models.embedded import embedded_export_dir, embedded_gguf_path, prepare_embedded_model

    console = Console(stderr=True)
    console.print(f"embedded GGUF: {embedded_gguf_path()}", soft_wrap=True)
    start = time.monotonic()
    with console.status(f"exporting to bf16 safetensors in {embedded_export_dir()} (first run ≈30-60 s; "
                        "reused afterwards)"):
        path = prepare_embedded_model()
    console.print(f"HF export ready after {time.monotonic() - start:.1f} s", soft_wrap=True)
    print(path)  # stdout carries only the path, so scripts can use $(spark-labs prepare-model)
    return 0
