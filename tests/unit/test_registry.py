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
        "docker", "run", "--rm", "--name", "spark-labs-vllm-8000", "--gpus", "all", "--ipc=host", "-p", "8000:8000",
        "-v", CACHE, "-e", "HF_TOKEN", "nvcr.io/nvidia/vllm:26.05.post1-py3",
        "vllm", "serve", MODEL, "--host", "0.0.0.0", "--port", "8000", "--served-model-name", MODEL,
        "--dtype", "bfloat16",
    ]


def test_vllm_eager_mode_is_an_explicit_choice():
    """The playbooks run vLLM with CUDA graphs; --enforce-eager only when asked for."""
    command = ENGINES["vllm"].docker_command(MODEL, port=9000, enforce_eager=True,
                                             extra_args=["--max-model-len", "8192"])
    assert "--enforce-eager" in command and "9000:8000" in command and "spark-labs-vllm-9000" in command
    assert command[-2:] == ["--max-model-len", "8192"]


def test_vllm_local_command_uses_the_server_module():
    assert ENGINES["vllm"].local_command("/m", port=8123, extra_args=["--enforce-eager"], served_name="x") == [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", "/m", "--host", "127.0.0.1",
        "--port", "8123", "--served-model-name", "x", "--dtype", "bfloat16", "--enforce-eager",
    ]


def test_sglang_docker_command():
    assert ENGINES["sglang"].docker_command(MODEL, served_name="llama") == [
        "docker", "run", "--rm", "--name", "spark-labs-sglang-30000", "--gpus", "all", "--ipc=host",
        "-p", "30000:30000", "-v", CACHE, "-e", "HF_TOKEN", "lmsysorg/sglang:latest-cu130",
        "python3", "-m", "sglang.launch_server", "--model-path", MODEL, "--host", "0.0.0.0", "--port", "30000",
        "--served-model-name", "llama", "--dtype", "bfloat16", "--enable-metrics", "--mem-fraction-static", "0.75",
    ]


def test_sglang_local_command():
    assert ENGINES["sglang"].local_command("/m", port=30001, served_name="s") == [
        sys.executable, "-m", "sglang.launch_server", "--model-path", "/m", "--host", "127.0.0.1", "--port",
        "30001", "--served-model-name", "s", "--dtype", "bfloat16", "--enable-metrics",
    ]


def test_trtllm_docker_command_follows_the_spark_playbook():
    assert ENGINES["trtllm"].docker_command(MODEL) == [
        "docker", "run", "--rm", "--name", "spark-labs-trtllm-8355", "--gpus", "all", "--ipc=host",
        "-p", "8355:8355", "-v", CACHE, "-e", "HF_TOKEN", "--ulimit", "memlock=-1", "--ulimit", "stack=67108864",
        "nvcr.io/nvidia/tensorrt-llm/release:1.3.0rc13",
        "trtllm-serve", MODEL, "--host", "0.0.0.0", "--port", "8355", "--backend", "pytorch",
        "--trust_remote_code",
    ]


def test_trtllm_local_command():
    assert ENGINES["trtllm"].local_command(MODEL, port=8400, extra_args=["--max_batch_size", "64"]) == [
        "trtllm-serve", MODEL, "--host", "127.0.0.1", "--port", "8400", "--backend", "pytorch",
        "--trust_remote_code", "--max_batch_size", "64",
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
        "docker", "run", "--rm", "--name", "spark-labs-ollama-11434", "--gpus", "all", "--ipc=host",
        "-p", "11434:11434", "-v", "ollama:/root/.ollama", "ollama/ollama:latest"]


def test_transformers_docker_runs_our_server_in_the_lab_image():
    command = ENGINES["transformers"].docker_command(MODEL, served_name="llama")
    image = command.index("spark-labs:latest")
    assert command[image + 1:] == ["python3", "-m", "spark_labs.serve", "--backend", "transformers", "--model",
                                   MODEL, "--host", "0.0.0.0", "--port", "8001", "--served-model-name", "llama"]
    assert "8001:8001" in command and "HF_TOKEN" in command


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


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_every_install_hint_covers_both_profiles(name, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr("importlib.util.find_spec", lambda module: None)
    available = ENGINES[name].availability()
    assert not available and available.reason
    assert "tiny" in available.install_hint and "spark" in available.install_hint


def test_every_engine_has_probe_protocol_and_a_docker_recipe():
    for spec in ENGINES.values():
        assert spec.ready_path.startswith("/") and spec.protocol in ("openai", "ollama")
        model = "/m/x.gguf" if spec.model_format == "gguf" else MODEL
        command = spec.docker_command(model)
        assert command[:3] == ["docker", "run", "--rm"] and "--gpus" in command and "--ipc=host" in command
        assert f"{spec.default_port}:" in command[command.index("-p") + 1]


def test_ollama_import_runs_ollama_create_against_the_started_server(monkeypatch, tmp_path):
    from spark_labs.engines import registry

    calls = []

    def fake_run(argv, env, capture_output, text, timeout):
        calls.append((argv, env["OLLAMA_HOST"], Path(argv[-1]).read_text()))
        return type("Done", (), {"returncode": 0, "stdout": "", "stderr": ""})()

    monkeypatch.setattr(registry.shutil, "which", lambda name: "/usr/bin/ollama")
    monkeypatch.setattr(registry.subprocess, "run", fake_run)
    handle = type("H", (), {"model_arg": "/x/smol.gguf", "host": "127.0.0.1", "port": 11500,
                            "served_name": "smollm2-135m-instruct"})()
    registry._ollama_import_model(handle)
    (argv, host, modelfile), = calls
    assert argv[:4] == ["ollama", "create", "smollm2-135m-instruct", "-f"] and host == "127.0.0.1:11500"
    assert modelfile.startswith("FROM /x/smol.gguf\n")


def test_ollama_import_failure_says_what_to_do(monkeypatch):
    from spark_labs.engines import registry
    from spark_labs.errors import EngineStartError

    monkeypatch.setattr(registry.shutil, "which", lambda name: "/usr/bin/ollama")
    monkeypatch.setattr(registry.subprocess, "run", lambda *a, **k: type(
        "Done", (), {"returncode": 1, "stdout": "", "stderr": "Error: invalid file magic"})())
    handle = type("H", (), {"model_arg": "/x/smol.gguf", "host": "127.0.0.1", "port": 11500, "served_name": "s"})()
    with pytest.raises(EngineStartError, match="invalid file magic") as err:
        registry._ollama_import_model(handle)
    assert "ollama --version" in str(err.value)


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
    assert out.startswith("docker run --rm --name spark-labs-trtllm-8355 --gpus all --ipc=host -p 8355:8355")
    assert "trtllm-serve" in out
    assert main(["command", "vllm", "--docker"]) == 0
    assert "--enforce-eager" not in capsys.readouterr().out
    assert main(["command", "vllm", "--docker", "--eager"]) == 0
    assert "--enforce-eager" in capsys.readouterr().out
    assert main(["list"]) == 0
    assert "sglang" in capsys.readouterr().out


def test_doctor_runs_on_this_machine(capsys):
    from spark_labs.doctor import main

    assert main([]) == 0
    out = capsys.readouterr().out
    assert "profile" in out and "available for models" in out and "llama.cpp" in out


def test_prepare_model_prints_the_export_path_on_stdout(capsys):
    from spark_labs.doctor import prepare_model_main
    from spark_labs.models.embedded import prepare_embedded_model

    assert prepare_model_main([]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(prepare_embedded_model())
    assert "embedded GGUF:" in captured.err and "HF export ready after" in captured.err


def test_a_local_model_is_mounted_once_and_an_hf_id_not_at_all(tmp_path):
    from spark_labs.engines.engine_spec import mount_local_model

    folder = tmp_path / "models" / "llama"
    folder.mkdir(parents=True)
    base = ["docker", "run", "-v", "/cache:/cache", "image:1", "serve"]
    assert mount_local_model(base + [str(folder)], str(folder), "image:1") == \
        ["docker", "run", "-v", "/cache:/cache", "-v", f"{folder}:{folder}:ro", "image:1", "serve", str(folder)]
    already = ["docker", "run", "-v", f"{tmp_path}:{tmp_path}", "image:1", "serve", str(folder)]
    assert mount_local_model(already, str(folder), "image:1") == already  # a mounted parent holds it
    assert mount_local_model(base + ["meta-llama/Llama-3.1-8B"], "meta-llama/Llama-3.1-8B", "image:1") == \
        base + ["meta-llama/Llama-3.1-8B"]
