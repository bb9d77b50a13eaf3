"""Every command refuses nonsense before it starts anything (issue 23, part 3): one line on stderr, exit status 2,
no traceback, no engine, model load or server. Each attack of the issue is here as the user typed it, run
in-process through ``spark_labs.cli.main``; the process-level check is tests/integration/test_command_validation.py.
"""

from __future__ import annotations

import argparse
import errno
import shutil
import socket
from pathlib import Path

import pandas as pd
import pytest
from gateway_support import closed_port

from spark_labs import cli

UNWRITABLE = "/proc/spark-labs-results"  # no one, root included, creates files in /proc


@pytest.fixture(autouse=True)
def nothing_starts(monkeypatch):
    """Every way a command starts work fails the test: engines, the gateway/UI server, in-process models."""
    import spark_labs.engines
    import spark_labs.engines.cli
    import spark_labs.grading.cli
    import spark_labs.serve.backends
    import spark_labs.serve.runner
    import spark_labs.speculative.runner

    def started(*args, **kwargs):
        raise AssertionError("the command started work before refusing its arguments")

    for owner, name in ((spark_labs.engines, "launch"), (spark_labs.engines.cli, "launch"),
                        (spark_labs.serve.runner.GatewayServer, "run"),
                        (spark_labs.serve.backends.TransformersBackend, "__init__"),
                        (spark_labs.speculative.runner.SpecModel, "__init__"),
                        (spark_labs.grading.cli, "grade_submissions")):
        monkeypatch.setattr(owner, name, started)
    for variable in ("SPARK_LABS_MODEL", "SPARK_LABS_PROFILE", "OLLAMA_HOST"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("SPARK_LABS_PROFILE", "tiny")


def refused(capsys, *argv: str) -> str:
    """The one line ``spark-labs ARGV`` prints before exiting with status 2."""
    try:
        code = cli.main(list(argv))
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


# --- ranges ---------------------------------------------------------------------------------------------------


def test_a_billion_streams_is_refused_with_the_reason(capsys):
    """It grew to 19 GB in 75 s and met the OOM killer."""
    line = refused(capsys, "bench", "run", "--concurrency", "1000000000")
    assert line.startswith("spark-labs bench run: error: argument --concurrency: 1000000000 is more than 4096: ")
    assert "connection per stream" in line


@pytest.mark.parametrize(("argv", "said"), [
    (["bench", "run", "--num-requests", "-5"], "argument --num-requests: -5 is too small; give 1 to 100000"),
    (["bench", "run", "--max-tokens", "-1"], "argument --max-tokens: -1 is too small; give 1 to 131072"),
    (["bench", "spec", "--threads", "0"], "argument --threads: 0 is too small; give 1 to"),
    (["bench", "spec", "--k", "1000000"], "argument --k: 1000000 is more than 64: a draft is accepted whole"),
    (["bench", "sweep", "--concurrency", "1,2,100000"], "100000 is more than 4096"),
    (["bench", "overhead", "--streams", "1,0"], "argument --streams: 0 is too small"),
    (["bench", "run", "--workload", "synthetic:-3:8"], "--workload synthetic:-3:8: -3 is too small"),
    (["bench", "run", "--workload", "chatty"], "unknown workload 'chatty'"),
    (["bench", "run", "--mode", "poisson", "--rate", "0"], "argument --rate: 0 is too small"),
    (["bench", "run", "--mode", "poisson"], "--mode poisson sends open-loop arrivals: add --rate"),
    (["bench", "micro", "--repeats", "0"], "argument --repeats: 0 is too small"),
    (["bench", "gateway", "--rounds", "nan"], "argument --rounds: 'nan' is not a whole number"),
    (["bench", "run", "--ramp-up", "nan"], "argument --ramp-up: 'nan' is not a number"),
    (["bench", "run", "--engine", "llamacp"], "--engine llamacp: Unknown engine 'llamacp'"),
    (["bench", "compare", "--engines", "llamacpp,vlm"], "argument --engines: Unknown engine 'vlm'"),
    (["bench", "spec", "--early-exit", "99"], "--early-exit 99: the model has 30 decoder layers"),
    (["build", "compile", "--new-tokens", "0"], "argument --new-tokens: 0 is too small"),
    (["engine", "start", "llamacpp", "--timeout", "-1"], "argument --timeout: -1 is too small"),
    (["grade", "sub.ipynb", "--lab", "00", "--workers", "0"], "argument --workers: 0 is too small"),
    (["serve", "--max-concurrency", "0"], "argument --max-concurrency: 0 is too small"),
])
def test_numbers_out_of_range_are_refused(capsys, argv, said):
    assert said in refused(capsys, *argv)


def test_the_ceiling_is_allowed_and_one_above_is_not():
    from spark_labs.cli_types import STREAMS

    assert STREAMS("4096") == 4096
    with pytest.raises(argparse.ArgumentTypeError, match="4097 is more than 4096"):
        STREAMS("4097")


# --- ports ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["70000", "-1", "abc", "99999", "0"])
@pytest.mark.parametrize("command", [["serve", "--upstream", "http://127.0.0.1:9/v1"], ["engine", "command", "vllm"]])
def test_ports_out_of_range_are_refused(capsys, command, value):
    """`serve --port 99999` hung without listening; `--port abc` printed a traceback."""
    assert "is not a port; give a number from 1 to 65535" in refused(capsys, *command, "--port", value)


@pytest.mark.parametrize("value", ["70000", "-1", "abc", "99999"])
@pytest.mark.parametrize("command", [["ui"], ["engine", "start", "llamacpp"]])
def test_ports_or_auto_out_of_range_are_refused(capsys, command, value):
    assert "or 'auto' for any free port" in refused(capsys, *command, "--port", value)


def test_port_types():
    from spark_labs.cli_types import port, port_or_auto

    assert port("1") == 1 and port("65535") == 65535
    assert port_or_auto("auto") == port_or_auto("0") == "auto" and port_or_auto("8080") == 8080
    with pytest.raises(argparse.ArgumentTypeError):
        port("0")  # serve has no way to say which port "any" became


@pytest.mark.parametrize("command", [["serve", "--upstream", "http://127.0.0.1:9/v1"], ["ui"]])
def test_a_port_in_use_is_refused_before_the_server_starts(capsys, command):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        assert f"port {taken} on 127.0.0.1 is taken" in refused(capsys, *command, "--port", str(taken))


# --- URLs -----------------------------------------------------------------------------------------------------


def test_an_unreachable_url_is_refused_before_the_run(capsys):
    """It ran anyway and ended in KeyError: 'ttft_p50'."""
    line = refused(capsys, "bench", "run", "--url", "http://127.0.0.1:1", "--model", "m")
    assert "--url http://127.0.0.1:1: nothing answers at 127.0.0.1:1 (connection refused)" in line
    assert "start the server first" in line


def test_url_without_model_is_a_usage_error(capsys):
    assert "--url needs --model" in refused(capsys, "bench", "run", "--url", f"http://127.0.0.1:{closed_port()}")


@pytest.mark.parametrize("argv", [
    ["serve", "--upstream", "ftp://127.0.0.1/v1"],
    ["serve", "--upstream", "http://127.0.0.1:9/v1", "--upstream", "127.0.0.1:8000"],
    ["bench", "gateway", "--upstream", "ftp://127.0.0.1:21"],
    ["bench", "run", "--url", "ftp://127.0.0.1:8000", "--model", "m"],
    ["ui", "--ollama", "ftp://127.0.0.1:11434"],
])
def test_only_http_urls_are_accepted(capsys, argv):
    """An ftp:// upstream was accepted."""
    assert "is not an http(s) URL" in refused(capsys, *argv)


def test_an_upstream_from_the_environment_is_checked_too(capsys, monkeypatch):
    monkeypatch.setenv("SPARK_LABS_GATEWAY_UPSTREAMS", "ftp://127.0.0.1/v1")
    assert "'ftp://127.0.0.1/v1' is not an http(s) URL" in refused(capsys, "serve")


def test_url_type():
    from spark_labs.cli_types import http_url

    assert http_url("http://127.0.0.1:8000/") == "http://127.0.0.1:8000"
    for bad in ("http://127.0.0.1:99999", "http://:80", "127.0.0.1:8000", "file:///etc/passwd"):
        with pytest.raises(argparse.ArgumentTypeError):
            http_url(bad)


# --- the gateway's settings -----------------------------------------------------------------------------------


def test_max_in_flight_zero_is_refused_naming_the_flag_and_variable(capsys):
    """A pydantic traceback before."""
    line = refused(capsys, "serve", "--upstream", "http://127.0.0.1:9/v1", "--max-in-flight", "0")
    assert "--max-in-flight 0 (or SPARK_LABS_GATEWAY_MAX_IN_FLIGHT): Input should be greater than or equal to 1" in line


def test_a_missing_keys_file_is_refused(capsys, tmp_path):
    """A traceback before (when the app read the file)."""
    missing = tmp_path / "keys.txt"
    line = refused(capsys, "serve", "--upstream", "http://127.0.0.1:9/v1", "--api-keys-file", str(missing))
    assert f"--api-keys-file: {missing}: no such file" in line


# --- outputs --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    ["bench", "run", "--out", UNWRITABLE],
    ["bench", "run", "--out", "/dev/full/results"],
    ["bench", "spec", "--out", f"{UNWRITABLE}/spec.csv"],
    ["demo", "--out", UNWRITABLE],
    ["build", "quantize", "--out", UNWRITABLE],
    ["grade", "sub.ipynb", "--lab", "00", "--out", f"{UNWRITABLE}/gradebook.csv"],
    ["grade", "sub.ipynb", "--lab", "00", "--html", f"{UNWRITABLE}/gradebook.html"],
])
def test_an_unwritable_output_is_refused_before_the_work(capsys, argv):
    """The results were lost with a traceback after the whole run."""
    line = refused(capsys, *argv)
    assert "cannot write there" in line or "does not exist" in line


def test_output_types_check_without_leaving_anything(tmp_path):
    from spark_labs.cli_types import output_dir, output_file

    assert output_dir(str(tmp_path / "new" / "folder")).is_dir()
    assert list((tmp_path / "new" / "folder").iterdir()) == []
    assert output_file(str(tmp_path / "table.csv")) == tmp_path / "table.csv"
    assert not (tmp_path / "table.csv").exists()
    (tmp_path / "kept.csv").write_text("old")
    output_file(str(tmp_path / "kept.csv"))
    assert (tmp_path / "kept.csv").read_text() == "old"
    with pytest.raises(argparse.ArgumentTypeError, match="does not exist"):
        output_file(str(tmp_path / "missing" / "table.csv"))


def test_a_full_disk_at_the_end_keeps_the_results_elsewhere(capsys):
    """/dev/full accepts the open and fails the write (ENOSPC), as a full disk does after the work."""
    from spark_labs.speculative.cli import _save_csv

    table = pd.DataFrame({"k": [1, 2], "speedup": [1.5, 1.25]})
    assert _save_csv(table, Path("/dev/full")) is False
    line = capsys.readouterr().err.strip()
    assert line.startswith("spark-labs bench spec: could not write /dev/full (No space left on device); "
                           "the finished results are in ")
    fallback = Path(line.rsplit(" ", 1)[1])
    assert pd.read_csv(fallback).equals(table)
    shutil.rmtree(fallback.parent)


def test_a_bench_report_that_fails_to_write_goes_to_a_fallback_folder(capsys, tmp_path):
    from spark_labs.bench.commands.shared import save_report

    class Report:
        runs: list = []

        def summary_table(self):
            return pd.DataFrame({"metric": ["ttft_p50"], "value": [0.1]})

        def diagnosis(self):
            return []

        def to_json(self, path):
            path.write_text("{}")

        def to_html(self, path):
            if path.parent == tmp_path:
                raise OSError(errno.ENOSPC, "No space left on device")
            path.write_text("<html>")

        def to_markdown(self):
            return "# report"

    assert save_report(Report(), tmp_path) is False
    line = capsys.readouterr().err.strip()
    assert f"could not write {tmp_path} (No space left on device); the finished results are in " in line
    fallback = Path(line.rsplit(" ", 1)[1])
    assert {p.name for p in fallback.iterdir()} == {"report.json", "report.html", "report.md"}
    shutil.rmtree(fallback.parent)


def test_save_results_writes_where_asked_when_it_can(tmp_path, capsys):
    from spark_labs.cli_types import save_results

    assert save_results(tmp_path / "a.txt", lambda p: p.write_text("x"), "prog") is True
    assert (tmp_path / "a.txt").read_text() == "x" and capsys.readouterr().err == ""


# --- SPARK_LABS_MODEL -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["bench", "run"], ["bench", "spec"], ["serve"], ["engine", "start", "llamacpp"],
                                  ["demo"], ["grade", "sub.ipynb", "--lab", "00"]])
def test_a_model_the_tiny_profile_cannot_use_is_refused(capsys, monkeypatch, argv, tmp_path):
    """It silently benchmarked the embedded model instead."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPARK_LABS_MODEL", "does/not-exist")
    line = refused(capsys, *argv)
    assert "SPARK_LABS_MODEL=does/not-exist is not used by the tiny profile" in line
    assert "unset SPARK_LABS_MODEL" in line


def test_a_model_outside_the_catalog_is_refused_on_spark_with_the_nearest_id(capsys, monkeypatch):
    monkeypatch.setenv("SPARK_LABS_PROFILE", "spark")
    monkeypatch.setenv("SPARK_LABS_MODEL", "Qwen/Qwen3-8B-Instruct")
    line = refused(capsys, "engine", "command", "vllm")
    assert "SPARK_LABS_MODEL=Qwen/Qwen3-8B-Instruct is not in spark-labs' model catalog. Did you mean Qwen/Qwen3-8B?" \
        in line


def test_catalog_ids_and_local_model_folders_are_accepted_on_spark(capsys, monkeypatch, tmp_path):
    from spark_labs.profiles import model_env_problem

    monkeypatch.setenv("SPARK_LABS_MODEL", "Qwen/Qwen3-8B")
    assert model_env_problem("spark") is None
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setenv("SPARK_LABS_MODEL", str(tmp_path))
    assert model_env_problem("spark") is None
    monkeypatch.setenv("SPARK_LABS_MODEL", "HuggingFaceTB/SmolLM2-135M-Instruct")
    assert model_env_problem("tiny") is None  # what tiny runs anyway
    assert cli.main(["engine", "command", "llamacpp"]) == 0


def test_an_unknown_profile_is_one_line_too(capsys, monkeypatch):
    monkeypatch.setenv("SPARK_LABS_PROFILE", "huge")
    assert "Unknown profile 'huge'" in refused(capsys, "bench", "run")


# --- a server that answers, but every request fails ------------------------------------------------------------


def test_a_run_where_every_request_failed_is_reported_not_a_key_error(tmp_path):
    """A reachable --url with a wrong --model: every request got HTTP 404, then KeyError: 'ttft_p50'."""
    from spark_labs.bench import Load, Report, RequestRecord, RunResult
    from spark_labs.bench.load import ClientHealth

    records = [RequestRecord(f"r{i}", "server", "chat", scheduled_ns=i, sent_ns=i, end_ns=i + 1000, status=404,
                             error="HTTP 404: no such model") for i in range(2)]
    report = Report([RunResult("server", "chat", Load("concurrent", 1), records,
                               ClientHealth(0.0, 0.0, 0.0, 0.0, 5.0, None, 1.0), wall_s=0.1)])
    table = report.summary_table()
    assert table["ok/total"].tolist() == ["0/2"] and table["TTFT p50 ms"].isna().all()
    assert "first error: HTTP 404: no such model" in report.to_markdown()
    report.to_html(tmp_path / "report.html")
    report.to_json(tmp_path / "report.json")
