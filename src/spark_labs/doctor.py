"""``spark-labs doctor``: profile, hardware, memory and which engines can run here, in one screen."""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.table import Table

from .engines import ENGINES
from .hardware import detect_hardware
from .memory import memory_snapshot
from .profiles import get_profile


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="spark-labs doctor", description=__doc__).parse_args(argv)
    console = Console()
    profile = get_profile()
    hardware = detect_hardware()
    console.print(f"[bold]profile[/] {profile.name}: {profile.description}")
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
    return 0


def prepare_model_main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="spark-labs prepare-model",
                            description="Export the embedded GGUF to HF safetensors once.").parse_args(argv)
    from .models import embedded_export_dir, embedded_gguf_path, prepare_embedded_model

    console = Console(stderr=True)
    console.print(f"embedded GGUF: {embedded_gguf_path()}", soft_wrap=True)
    start = time.monotonic()
    with console.status(f"exporting to bf16 safetensors in {embedded_export_dir()} (first run ≈30-60 s; "
                        "reused afterwards)"):
        path = prepare_embedded_model()
    console.print(f"HF export ready after {time.monotonic() - start:.1f} s", soft_wrap=True)
    print(path)  # stdout carries only the path, so scripts can use $(spark-labs prepare-model)
    return 0
