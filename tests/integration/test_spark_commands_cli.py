"""The spark profile's engine commands as the docs print them, through the installed `spark-labs` console script
(a process). How each command is checked against the engines' own parsers: tests/unit/test_spark_commands.py."""

from __future__ import annotations

from pathlib import Path

from spark_labs.engines import ENGINES
from spark_labs.profiles import get_profile

SPARK = get_profile("spark")


def test_the_documented_engine_commands_print_what_the_docs_say():
    """docs/engines.md's commands exactly as written, through the installed console script."""
    import shlex
    import subprocess
    import sys

    docs = (Path(__file__).resolve().parents[2] / "docs" / "engines.md").read_text()
    typed = [line.split("#")[0].strip() for line in docs.splitlines() if line.startswith("spark-labs engine command")]
    assert len(typed) == 2
    script = Path(sys.executable).parent / "spark-labs"
    for line in typed:
        result = subprocess.run([str(script), *shlex.split(line)[1:]], capture_output=True, text=True, timeout=120,
                                check=False)
        assert result.returncode == 0, result.stderr
        printed = shlex.split(result.stdout)
        assert printed[printed.index(ENGINES["vllm"].docker_image) + 1:][:2] == ["vllm", "serve"]
        assert ("--enforce-eager" in printed) is ("--eager" in line), line


def test_a_local_launch_of_a_spark_model_carries_the_profile_flags_once(monkeypatch, tmp_path):
    """Uses a STAND-IN PROCESS for vLLM (a sleeping Python; no GPU or Llama weights here): what is real is the
    launcher building the command, the profile's flags merged with the harness's, and stopping the process.
    The launcher checks the model can be loaded first: an HF cache built for the test holds placeholder files."""
    import dataclasses
    import sys

    from hf_cache_support import cache_model

    from spark_labs.engines import launch
    from spark_labs.engines.engine_spec import Availability

    monkeypatch.setenv("HF_HOME", str(tmp_path))
    cache_model(tmp_path / "hub", "Qwen/Qwen3-8B")

    def stand_in(model, port, host, extra_args, served_name):
        return [sys.executable, "-c", "import time; time.sleep(60)", model, *extra_args]

    spec = dataclasses.replace(ENGINES["vllm"], build_local=stand_in, check_available=lambda: Availability(True))
    handle = launch(spec, SPARK.model_for("04"), port="auto", profile="spark", wait=False,
                    extra_args=["--max-model-len", "4096"])
    try:
        args = handle.command[3:]
        assert args[0] == "Qwen/Qwen3-8B" and args.count("--max-model-len") == 1
        assert args[args.index("--max-model-len") + 1] == "4096"  # the caller's value wins
        assert args[args.index("--gpu-memory-utilization") + 1] == "0.7" and "--reasoning-parser" in args
        assert handle.chat_extras == {"chat_template_kwargs": {"enable_thinking": False}}
    finally:
        handle.stop()
