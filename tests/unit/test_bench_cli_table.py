"""``spark-labs bench`` is a table: each sub-command's flags live beside its code (``add_arguments`` / ``run``), and
commands of packages built on the harness (``spec``) are added above it, so bench never imports them."""

from __future__ import annotations

import argparse
import importlib

import pytest

from spark_labs import cli
from spark_labs.bench import cli as bench_cli

TABLE = {**bench_cli.COMMANDS, **cli.BENCH_COMMANDS}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_every_bench_command_module_declares_its_flags_and_runs(name):
    module = importlib.import_module(TABLE[name][0])
    assert callable(module.add_arguments) and callable(module.run)
    assert TABLE[name][1].strip()


def test_the_harness_table_names_only_its_own_modules():
    assert all(module.startswith("spark_labs.bench.commands.") for module, _ in bench_cli.COMMANDS.values())
    assert not set(bench_cli.COMMANDS) & set(cli.BENCH_COMMANDS)


def test_bench_help_lists_every_command_spec_included(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.bench(["--help"])
    assert exit_.value.code == 0
    listed = capsys.readouterr().out.split("positional arguments:")[1]
    assert all(f"    {name} " in listed for name in TABLE)


@pytest.mark.parametrize("name", sorted(cli.BENCH_COMMANDS))
def test_added_commands_explain_every_flag(name):
    _, parsers = bench_cli._parser(TABLE)
    missing = [action.option_strings[0] for action in parsers[name]._actions
               if action.option_strings and not (action.help or "").strip()]
    assert not missing, f"spark-labs bench {name}: flags without help: {missing}"
    assert parsers[name].allow_abbrev is False


def test_added_commands_get_the_shared_checks(capsys):
    """An unknown flag is refused in the added command's own words, as for bench's own commands."""
    with pytest.raises(SystemExit) as exit_:
        cli.bench(["spec", "--url", "http://127.0.0.1:9"])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert "spark-labs bench spec" in error and "unrecognized arguments: --url" in error


def test_bench_main_without_the_added_commands_does_not_know_them(capsys):
    with pytest.raises(SystemExit):
        bench_cli.main(["spec"])
    assert "invalid choice: 'spec'" in capsys.readouterr().err
    assert isinstance(bench_cli._parser()[0], argparse.ArgumentParser)
