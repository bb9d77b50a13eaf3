"""Each engine's commands, checked against exactly what they must produce (no engine is started)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from spark_labs.engines import ENGINES
from spark_labs.engines.registry import hf_cache_mount, ollama_modelfile
from spark_labs.profiles import plan

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
CACHE = f"{Path.home() / '.cache' / 'huggingface'}:/root/.cache/huggingface"


def test_six_engines_with_their_usual_ports_and_protocols():
    expected = {"vllm": (8000, "openai"), "sglang": (30000, "openai"), "trtllm": (8355, "openai"),
                "llamacpp": (8080, "openai"), "ollama": (11434, "ollama"), "transformers": (8001, "openai")}
    assert {name: (s.default_port, s.protocol) for name, s in ENGINES.items()} == expected


def test_metrics_endpoints_where_engines_have_them():
    assert ENGINES["vllm"].metrics_path == "/metrics"
    assert ENGINES["sglang"].metrics_path == "/metrics"
    assert ENGINES["ollama"].metrics_path is None


def test_vllm_docker_command_for_spark():
    assert ENGINES["vllm"].docker_command(MODEL, served_name=MODEL) == [
        "docker", "run", "--rm", "--gpus", "all", "--ipc=host", "-p", "8000:8000", "-v", CACHE,
        "-e", "HF_TOKEN", "nvcr.io/nvidia/vllm:25.11-py3",
        "python3", "-m", "vllm.entrypoints.openai.api_server", "--model", MODEL, "--host", "0.0.0.0",
        "--port", "8000", "--served-model-name", MODEL, "--dtype", "bfloat16",
    ]


def test_vllm_enforce_eager_is_an_explicit_choice():
    command = ENGINES["vllm"].docker_command(MODEL, port=9000, enforce_eager=True)
    assert "--enforce-eager" in command and "9000:8000" in command


def test_vllm_local_command_uses_the_server_module():
    assert ENGINES["vllm"].local_command("/m", port=8123, extra_args=["--enforce-eager"], served_name="x") == [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", "/m", "--host", "127.0.0.1",
        "--port", "8123", "--served-model-name", "x", "--dtype", "bfloat16", "--enforce-eager",
    ]


def test_sglang_docker_command():
    assert ENGINES["sglang"].docker_command(MODEL, served_name="llama") == [
        "docker", "run", "--rm", "--gpus", "all", "--ipc=host", "-p", "30000:30000", "-v", CACHE,
        "-e", "HF_TOKEN", "lmsysorg/sglang:spark", "python3", "-m", "sglang.launch_server",
        "--model-path", MODEL, "--host", "0.0.0.0", "--port", "30000", "--served-model-name", "llama",
        "--dtype", "bfloat16", "--enable-metrics",
    ]


def test_trtllm_docker_command_follows_the_spark_playbook():
    assert ENGINES["trtllm"].docker_command(MODEL) == [
        "docker", "run", "--rm", "--gpus", "all", "--ipc=host", "-p", "8355:8355", "-v", CACHE,
        "-e", "HF_TOKEN", "--ulimit", "memlock=-1", "--ulimit", "stack=67108864",
        "nvcr.io/nvidia/tensorrt-llm/release:spark-single-gpu-dev",
        "trtllm-serve", MODEL, "--host", "0.0.0.0", "--port", "8355", "--backend", "pytorch",
        "--trust_remote_code",
    ]


def test_llamacpp_local_command_queues_instead_of_interrupting():
    assert ENGINES["llamacpp"].local_command("/m.gguf", port=8080, served_name="smol") == [
        sys.executable, "-m", "llama_cpp.server", "--model", "/m.gguf", "--host", "127.0.0.1", "--port", "8080",
        "--model_alias", "smol", "--chat_format", "chatml", "--interrupt_requests", "False",
    ]


def test_llamacpp_docker_mounts_the_gguf():
    command = ENGINES["llamacpp"].docker_command("/data/models/x.gguf", served_name="x")
    assert command[command.index("-v") + 1] == "/data/models:/models:ro"
    assert command[command.index("-m") + 1] == "/models/x.gguf"
    assert "--metrics" in command and "8080:8080" in command


def test_ollama_local_and_docker_commands():
    assert ENGINES["ollama"].local_command("/m.gguf", port=11500, served_name="smol") == [
        "env", "OLLAMA_HOST=127.0.0.1:11500", "ollama", "serve"]
    assert ENGINES["ollama"].docker_command("llama3.1:8b") == [
        "docker", "run", "--rm", "--gpus", "all", "--ipc=host", "-p", "11434:11434", "-v", "ollama:/root/.ollama",
        "ollama/ollama:latest"]


def test_ollama_modelfile_imports_the_gguf_with_chatml():
    text = ollama_modelfile("/x/model.gguf")
    assert text.startswith("FROM /x/model.gguf\n") and "<|im_start|>" in text and 'stop "<|im_end|>"' in text


def test_transformers_engine_runs_the_spark_labs_server():
    command = ENGINES["transformers"].local_command("/m", port=8001, served_name="smol")
    assert command[:4] == [sys.executable, "-m", "spark_labs.serve", "--backend"]


def test_tiny_profile_models_map_to_the_right_format():
    model = plan("01", "tiny").model
    assert ENGINES["llamacpp"].model_arg(model).endswith(".gguf")
    assert Path(ENGINES["vllm"].model_arg(model), "config.json").is_file()


@pytest.mark.parametrize("name", ["sglang", "trtllm"])
def test_gpu_only_engines_explain_themselves_on_a_cpu_box(name):
    available = ENGINES[name].availability()
    assert not available and "container" in available.install_hint


def test_ollama_availability_gives_install_steps_when_missing(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    available = ENGINES["ollama"].availability()
    assert not available and "ollama" in available.install_hint.lower()


def test_hf_cache_mount_is_absolute():
    flag, mount = hf_cache_mount()
    assert flag == "-v" and mount.startswith("/")


def test_engine_cli_prints_a_pasteable_command(capsys):
    from spark_labs.engines.cli import main

    assert main(["command", "trtllm", "--docker"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("docker run --rm --gpus all --ipc=host -p 8355:8355") and "trtllm-serve" in out
    assert main(["list"]) == 0
    assert "sglang" in capsys.readouterr().out


def test_doctor_runs_on_this_machine(capsys):
    from spark_labs.doctor import main

    assert main([]) == 0
    out = capsys.readouterr().out
    assert "profile" in out and "available for models" in out and "llama.cpp" in out
