"""Model errors come early and say what to do (issue 25, part 6): "can this model be loaded here, and if not, why
and what to do", answered in seconds. Before, a GPU box with no network ran `spark-labs serve` for 59 s and
`build compile` for 83 s to end in transformers' raw `OSError: We couldn't connect to 'https://huggingface.co'`.

Local folders and HF caches are real (built in a temp dir); "offline" is HF_HUB_OFFLINE=1 or an endpoint where
nothing listens. The gated / missing / refused-token answers come from a STAND-IN Hub on 127.0.0.1
(tests/hf_cache_support.py) because the real Hub cannot be reached from CI. The commands as processes, timed:
tests/integration/test_model_errors_cli.py."""

from __future__ import annotations

import json
import time

import pytest
from gateway_support import closed_port
from hf_cache_support import (
    BAD_TOKEN,
    GATED,
    MISSING,
    PUBLIC,
    cache_model,
    silent_hub,
    stand_in_hub,
)

from spark_labs import cli, profiles
from spark_labs.errors import ModelUnavailableError, ProfileError
from spark_labs.models import availability
from spark_labs.models.availability import locate_model

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


@pytest.fixture(autouse=True)
def hf_env(monkeypatch, tmp_path):
    """A Hugging Face home of this test's own (empty cache, no token) and no offline switch."""
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN", "HF_TOKEN_PATH", "HF_ENDPOINT",
                 "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "SPARK_LABS_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return tmp_path / "hf" / "hub"


def no_network(monkeypatch):
    """Fail the test if the check asks the Hub at all."""
    monkeypatch.setattr(availability, "_ask_hub", lambda *args: pytest.fail("the check asked the Hub"))


def refusal(model: str, **kwargs) -> str:
    start = time.monotonic()
    with pytest.raises(ModelUnavailableError) as caught:
        locate_model(model, **kwargs)
    assert time.monotonic() - start < 5
    message = str(caught.value)
    assert message.startswith(f"{model} cannot be loaded here: ") and "To fix: " in message
    return message


# --- local folders and the HF cache: no network ------------------------------------------------------------


def test_a_local_folder_with_its_config_loads_without_asking_anyone(monkeypatch, tmp_path):
    no_network(monkeypatch)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "config.json").write_text("{}")
    assert locate_model(str(tmp_path / "mine")) == f"the local folder {tmp_path / 'mine'}"


def test_a_folder_that_is_not_there_or_has_no_config_is_named_as_such(monkeypatch, tmp_path):
    no_network(monkeypatch)
    assert "there is no such folder" in refusal(str(tmp_path / "gone"))
    (tmp_path / "empty").mkdir()
    assert "the folder has no config.json" in refusal(str(tmp_path / "empty"))


def test_a_model_in_the_hf_cache_loads_offline(monkeypatch, hf_env):
    no_network(monkeypatch)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache_model(hf_env, LLAMA)
    assert locate_model(LLAMA) == f"the Hugging Face cache ({hf_env})"


def test_hf_hub_cache_is_read_at_each_call_not_at_import(monkeypatch, tmp_path):
    """huggingface_hub fixes its cache path when imported; a notebook that sets HF_HUB_CACHE later is heard."""
    no_network(monkeypatch)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    elsewhere = tmp_path / "big-disk" / "hub"
    cache_model(elsewhere, LLAMA)
    monkeypatch.setenv("HF_HUB_CACHE", str(elsewhere))
    assert str(elsewhere) in locate_model(LLAMA)


def test_a_cached_config_alone_is_not_a_cached_model(monkeypatch, hf_env):
    """AutoConfig or an interrupted download leaves config.json only: offline, the weights would be missing."""
    no_network(monkeypatch)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache_model(hf_env, LLAMA, files=("config.json",))
    message = refusal(LLAMA)
    assert "only part of it is in the Hugging Face cache" in message
    assert "the weights, the tokenizer missing" in message


def test_a_sharded_model_names_the_shards_it_lacks(monkeypatch, hf_env):
    no_network(monkeypatch)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = cache_model(hf_env, LLAMA, files=("config.json", "tokenizer.json",
                                                  "model-00001-of-00002.safetensors"))
    weight_map = {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}
    (snapshot / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    assert "model-00002-of-00002.safetensors missing" in refusal(LLAMA)
    (snapshot / "model-00002-of-00002.safetensors").write_text("{}")
    assert "Hugging Face cache" in locate_model(LLAMA)


# --- offline -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("switch", ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
def test_offline_and_not_cached_says_so_without_asking_the_hub(monkeypatch, hf_env, switch):
    no_network(monkeypatch)
    monkeypatch.setenv(switch, "1")
    message = refusal(LLAMA)
    assert f"it is not in the Hugging Face cache ({hf_env}) and HF_HUB_OFFLINE=1 forbids downloading it" in message
    assert f"`hf download {LLAMA}`" in message and "or give a local folder with config.json instead" in message


def test_a_hub_that_cannot_be_reached_is_offline_in_seconds(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    message = refusal(LLAMA)
    assert "and the Hub at http://127.0.0.1:" in message and "cannot be reached" in message
    assert "connect this machine to the network, or download it where there is network" in message


def test_a_hub_that_swallows_the_request_is_given_up_on_after_the_timeout(monkeypatch):
    """A STAND-IN Hub that accepts the connection and never answers (a firewall, a dead proxy)."""
    with silent_hub() as url:
        monkeypatch.setenv("HF_ENDPOINT", url)
        start = time.monotonic()
        message = refusal(LLAMA, timeout=0.5)
    assert time.monotonic() - start < 2.5
    assert "cannot be reached" in message


def test_a_dns_lookup_that_hangs_is_bounded_too(monkeypatch):
    """getaddrinfo ignores httpx's timeout; the check waits for it no longer than its own timeout."""
    import httpx

    monkeypatch.setattr(httpx.Client, "head", lambda *args, **kwargs: time.sleep(30))
    start = time.monotonic()
    message = refusal(LLAMA, timeout=0.5)
    assert time.monotonic() - start < 2.5
    assert "no answer within 1.5 s" in message


# --- what the Hub says: a STAND-IN Hub plays back its answers --------------------------------------------------


def test_stand_in_hub_public_model_is_reachable_and_downloads_on_first_load(monkeypatch, hf_env):
    with stand_in_hub() as (url, seen):
        monkeypatch.setenv("HF_ENDPOINT", url)
        where = locate_model(PUBLIC)
    assert where == f"the Hugging Face Hub ({url}/{PUBLIC}); the first load downloads it into {hf_env}"
    assert seen == [None]  # no token here, none sent


def test_stand_in_hub_gated_model_without_a_token_says_log_in_and_accept_the_licence(monkeypatch):
    with stand_in_hub() as (url, _):
        monkeypatch.setenv("HF_ENDPOINT", url)
        message = refusal(GATED)
    assert "it is a gated model and no Hugging Face token is set" in message
    assert f"accept its licence on {url}/{GATED} while logged in" in message
    assert "export HF_TOKEN=hf_…" in message and "`hf auth login`" in message and "huggingface-cli login" in message


def test_stand_in_hub_gated_model_with_a_token_but_no_access_says_accept_the_licence(monkeypatch, hf_env):
    """The token saved by `hf auth login` ($HF_HOME/token) is found and sent, as HF_TOKEN would be."""
    hf_env.parent.mkdir(parents=True)
    (hf_env.parent / "token").write_text("hf_saved\n")
    with stand_in_hub() as (url, seen):
        monkeypatch.setenv("HF_ENDPOINT", url)
        message = refusal(GATED)
    assert seen == ["Bearer hf_saved"]
    assert "the account of this token has not been granted access (licence not accepted" in message
    assert f"accept the licence on {url}/{GATED} with that account" in message


def test_stand_in_hub_missing_repo_is_a_typo_with_the_nearest_catalog_id(monkeypatch):
    with stand_in_hub() as (url, _):
        monkeypatch.setenv("HF_ENDPOINT", url)
        anonymous = refusal("meta-llama/Llama-3.1-8B-Instruc")
        monkeypatch.setenv("HF_TOKEN", "hf_valid")
        signed_in = refusal(MISSING)
    assert f"there is no such model on the Hub at {url} (or it is private and no token is set)" in anonymous
    assert "did you mean meta-llama/Llama-3.1-8B-Instruct?" in anonymous and "case-sensitive" in anonymous
    assert f"there is no such model on the Hub at {url}." in signed_in  # a token: private is ruled out


def test_stand_in_hub_refused_token_says_make_a_new_one(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", BAD_TOKEN)
    with stand_in_hub() as (url, _):
        monkeypatch.setenv("HF_ENDPOINT", url)
        message = refusal(PUBLIC)
    assert "refused the Hugging Face token (invalid or expired)" in message
    assert f"{url}/settings/tokens" in message


def test_stand_in_hub_renamed_repo_redirect_is_followed(monkeypatch):
    with stand_in_hub() as (url, seen):
        monkeypatch.setenv("HF_ENDPOINT", url)
        assert locate_model(f"{PUBLIC}-renamed").startswith("the Hugging Face Hub")
    assert len(seen) == 2


def test_stand_in_hub_server_error_says_try_again_or_download(monkeypatch):
    with stand_in_hub() as (url, _):
        monkeypatch.setenv("HF_ENDPOINT", url)
        message = refusal("busy/model")
    assert f"and the Hub at {url} answered HTTP 503" in message and "try again later" in message


def test_stand_in_hub_repo_without_config_json_is_not_a_transformers_model(monkeypatch):
    with stand_in_hub() as (url, _):
        monkeypatch.setenv("HF_ENDPOINT", url)
        assert "has no config.json (not a Transformers model" in refusal("ggufs/model")


def test_an_answer_without_the_hubs_headers_is_not_taken_for_the_hubs(monkeypatch):
    """A captive portal or proxy answering 404 for everything is not 'no such model' (seen on a sandbox network);
    a 200 without the commit header is not 'reachable' either."""
    with stand_in_hub() as (url, _):
        monkeypatch.setenv("HF_ENDPOINT", url)
        message = refusal("portal/model")
    assert f"{url} (but not as the Hub: a proxy or captive portal?) answered HTTP 404" in message
    assert "no such model" not in message


def test_not_an_id_and_not_a_folder(monkeypatch):
    no_network(monkeypatch)
    assert "neither a folder here nor a Hugging Face id" in refusal("not an id")


# --- wired in: plan(), the launcher, the commands, doctor ------------------------------------------------------


def test_the_tiny_profile_never_checks_anything(monkeypatch):
    """The embedded model is packaged: plan() on tiny reads no cache and asks no network."""
    monkeypatch.setattr(availability, "locate_model", lambda *a, **k: pytest.fail("tiny checked its model"))
    monkeypatch.setenv("SPARK_LABS_PROFILE", "tiny")
    assert profiles.plan("01").model.embedded
    assert "no network needed" in profiles.model_source()


def test_a_labs_plan_fails_in_its_first_cell_with_the_fix(monkeypatch, hf_env):
    monkeypatch.setenv("SPARK_LABS_PROFILE", "spark")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="Qwen/Qwen3-8B cannot be loaded here: it is not in the"):
        profiles.plan("04")
    assert profiles.plan("04", "spark").model.hf_id == "Qwen/Qwen3-8B"  # another profile's plan: shown only
    cache_model(hf_env, "Qwen/Qwen3-8B")
    assert profiles.plan("04").model.hf_id == "Qwen/Qwen3-8B"


def test_a_learners_model_folder_is_checked_like_any_model(monkeypatch, tmp_path):
    monkeypatch.setenv("SPARK_LABS_PROFILE", "spark")
    monkeypatch.setenv("SPARK_LABS_MODEL", str(tmp_path / "my-finetune"))
    with pytest.raises(ModelUnavailableError, match="my-finetune cannot be loaded here: there is no such folder"):
        profiles.plan("01")
    monkeypatch.setenv("SPARK_LABS_MODEL", "Qwen/Qwen3-8B-Instruct")  # a typo: the catalog knows the real id
    with pytest.raises(ProfileError, match="Did you mean Qwen/Qwen3-8B?"):
        profiles.plan("01")


def test_the_launcher_refuses_before_starting_any_process(monkeypatch):
    """The unit tier fails any process start: the refusal must come before the engine's."""
    import dataclasses

    from spark_labs.engines import ENGINES, launch
    from spark_labs.engines.engine_spec import Availability

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = dataclasses.replace(ENGINES["vllm"], check_available=lambda: Availability(True))
    with pytest.raises(ModelUnavailableError, match="does/not-exist cannot be loaded here"):
        launch(spec, "does/not-exist", port="auto", profile="spark", wait=False)


@pytest.mark.parametrize("argv", [["serve", "--backend", "transformers"], ["build", "compile"],
                                  ["engine", "start", "vllm"], ["bench", "run"], ["demo"]])
def test_commands_refuse_in_one_line_before_starting(capsys, monkeypatch, argv, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPARK_LABS_PROFILE", "spark")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and "Traceback" not in line
    assert f"error: {LLAMA} cannot be loaded here: it is not in the Hugging Face cache" in line


def test_serve_model_flag_names_the_flag_in_its_fix(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SystemExit):
        cli.main(["serve", "--model", "does/not-exist"])
    line = capsys.readouterr().err
    assert "error: --model does/not-exist cannot be loaded here" in line
    assert "pass --model <local folder with config.json>" in line


def test_printing_an_engine_command_needs_no_model(capsys, monkeypatch):
    monkeypatch.setenv("SPARK_LABS_PROFILE", "spark")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert cli.main(["engine", "command", "vllm", "--docker"]) == 0
    assert LLAMA in capsys.readouterr().out


def test_doctor_lists_each_model_with_where_it_loads_from_or_the_fix(monkeypatch, hf_env):
    from rich.console import Console

    from spark_labs.doctor import print_models

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache_model(hf_env, LLAMA)
    console = Console(record=True, width=400)
    problems = print_models(console, profiles.get_profile("spark"))
    text = console.export_text()
    assert f"model {LLAMA}: ready, from the Hugging Face cache ({hf_env})" in text
    assert "model Qwen/Qwen3-8B (lab 04): not ready: Qwen/Qwen3-8B cannot be loaded here" in text
    assert problems[LLAMA] is None and "HF_HUB_OFFLINE=1" in problems["Qwen/Qwen3-8B"]


def test_a_container_engine_without_docker_is_refused_before_the_model_is_looked_for(monkeypatch, tmp_path):
    """On a GPU machine with no Docker (or the lab container without the host's socket) a spark section's engine
    is refused at once, naming Docker and the fix, not after a model download or as a ``docker`` not found."""
    from spark_labs.engines import launch, launcher
    from spark_labs.errors import EngineNotInstalledError

    monkeypatch.setenv("PATH", str(tmp_path))  # no docker on it
    monkeypatch.setattr(launcher, "locate_model", lambda *a, **k: pytest.fail("the model was looked for"))
    start = time.monotonic()
    with pytest.raises(EngineNotInstalledError, match=r"(?s)vLLM runs as a container.*no Docker here.*docker\.sock"):
        launch("vllm", "meta-llama/Llama-3.1-8B-Instruct", port="auto", docker=True, profile="spark")
    assert time.monotonic() - start < 2
