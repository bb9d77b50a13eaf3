"""``spark-labs bench``'s sub-commands take only the flags they use, and explain every one."""

from __future__ import annotations

import argparse

import pytest

from spark_labs.bench.cli import _parser, main


def _commands() -> dict[str, argparse.ArgumentParser]:
    return _parser()[1]


@pytest.mark.parametrize("command", sorted(_commands()))
def test_every_flag_has_help_text(command):
    missing = [action.option_strings[0] for action in _commands()[command]._actions
               if action.option_strings and not (action.help or "").strip()]
    assert not missing, f"spark-labs bench {command}: flags without help: {missing}"


def test_every_sub_command_has_help_text():
    parser = _parser()[0]
    (choices,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert all(action.help for action in choices._choices_actions)


@pytest.mark.parametrize(("argv", "said"), [
    (["micro", "--workload", "chat"], "unrecognized arguments: --workload chat"),  # micro sends pp/tg requests
    (["overhead", "--engine", "vllm"], "unrecognized arguments: --engine vllm"),  # always the calibration server
    (["compare", "--num-requests", "4"], "unrecognized arguments: --num-requests 4"),
    (["sweep", "--mode", "poisson"], "unrecognized arguments: --mode poisson"),
    (["run", "--pp", "128"], "unrecognized arguments: --pp 128"),
    (["run", "--concurrency", "1,2"], "--concurrency takes one number for run"),
    (["run", "--rate", "2"], "--rate sets open-loop arrivals"),
    (["run", "--mode", "poisson", "--rate", "2", "--gamma-shape", "0.5"], "--gamma-shape applies to --mode gamma"),
    (["run", "--model", "m"], "--model describes a running server: pass --url too"),
    (["run", "--url", "http://127.0.0.1:9", "--model", "m", "--engine-arg=--x"], "--engine-arg applies to an engine"),
    (["run", "--engine", "vllm", "--url", "http://127.0.0.1:9"], "not allowed with argument --engine"),
    (["gateway", "--upstream", "vllm", "--model", "m"], "--model names the model at a URL upstream"),
    (["sweep", "--concurrency", "0,2"], "argument --concurrency: 0 is too small; give 1 to 4096"),
])
def test_flags_that_do_not_apply_are_refused_with_a_reason(argv, said, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert said in error and f"spark-labs bench {argv[0]}" in error


def test_synthetic_workload_refuses_max_tokens():
    """synthetic:IN:OUT carries its own output length; a --max-tokens beside it was silently dropped."""
    from spark_labs.bench.commands.shared import parse_workload
    from spark_labs.profiles import plan

    args = argparse.Namespace(workload="synthetic:64:16", max_tokens=8, num_requests=None, plan=plan("01", "tiny"))
    with pytest.raises(SystemExit, match="--max-tokens does not apply to synthetic"):
        parse_workload(args)
