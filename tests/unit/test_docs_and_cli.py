from __future__ import annotations

import importlib

import pytest

from spark_labs import cli


def test_help_lists_every_command(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_command_points_at_a_real_function(name):
    module, function, _ = cli.COMMANDS[name]
    assert callable(getattr(importlib.import_module(module), function))


def test_unknown_command_is_a_usage_error(capsys):
    assert cli.main(["frobnicate"]) == 2
    assert "unknown command" in capsys.readouterr().err
