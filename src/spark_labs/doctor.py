"""``spark-labs doctor``: profile, hardware, memory and which engines can run here, in one screen."""

from __future__ import annotations

import argparse

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
    from .models import embedded_gguf_path, prepare_embedded_model

    print(f"embedded GGUF: {embedded_gguf_path()}")
    print(f"HF export:     {prepare_embedded_model()}")
    return 0
