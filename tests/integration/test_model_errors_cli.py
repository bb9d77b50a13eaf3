"""Model errors come early and say what to do (issue 25, part 6), through the installed ``spark-labs`` script as a
learner types it. Before: on a GPU box with no network `serve --backend transformers` failed after 59 s and
`build compile` after 83 s with transformers' raw `OSError: We couldn't connect to 'https://huggingface.co'`,
and `doctor` called the transformers engine ready. Now each exits non-zero within 5 s with one message naming
the model, the cause and the fix, and no traceback.

The spark profile on this CPU box, an empty HF cache in a temp dir, and offline either way: HF_HUB_OFFLINE=1, or
an HF_ENDPOINT where nothing listens. The gated case uses a STAND-IN Hub on 127.0.0.1 (tests/hf_cache_support.py)
playing back the real Hub's answer, because the real Hub cannot be reached from CI. The checks one by one:
tests/unit/test_model_availability.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gateway_support import closed_port
from hf_cache_support import GATED, stand_in_hub

SPARK_LABS = Path(sys.executable).parent / "spark-labs"  # the venv's script, as a user types it
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
COMMANDS = [["serve", "--backend", "transformers"], ["doctor"], ["build", "compile"], ["engine", "start", "vllm"]]


def run(argv: list[str], tmp_path: Path, **env: str) -> tuple[int, str, float]:
    """The command with the spark profile and an empty HF cache; (exit status, all output, seconds)."""
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("SPARK_LABS_MODEL", "HF_HUB_OFFLINE", "HF_ENDPOINT", "HF_TOKEN", "HF_HUB_CACHE")}
    environment |= {"SPARK_LABS_PROFILE": "spark", "HF_HOME": str(tmp_path / "hf"), "COLUMNS": "400", **env}
    started = time.monotonic()
    result = subprocess.run([str(SPARK_LABS), *argv], cwd=tmp_path, env=environment, capture_output=True, text=True,
                            timeout=120, check=False)
    return result.returncode, " ".join((result.stdout + result.stderr).split()), time.monotonic() - started


def assert_refused_early(code: int, said: str, seconds: float, *expected: str) -> None:
    assert code != 0, said
    assert seconds < 5, f"took {seconds:.1f} s"
    assert "Traceback" not in said and "OSError" not in said, said
    for text in expected:
        assert text in said, said


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_a_model_id_that_does_not_exist_is_refused_offline_within_5_s(tmp_path, argv):
    code, said, seconds = run(argv, tmp_path, SPARK_LABS_MODEL="does/not-exist", HF_HUB_OFFLINE="1")
    assert_refused_early(code, said, seconds, "SPARK_LABS_MODEL=does/not-exist is not in spark-labs' model catalog",
                         "or to a local model folder with its config.json")


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_the_profiles_model_neither_cached_nor_downloadable_is_refused_within_5_s(tmp_path, argv):
    """The measured case: the default Llama-3.1-8B, not in the cache, HF_HUB_OFFLINE=1."""
    code, said, seconds = run(argv, tmp_path, HF_HUB_OFFLINE="1")
    assert_refused_early(code, said, seconds, f"{LLAMA} cannot be loaded here: it is not in the Hugging Face cache",
                         "HF_HUB_OFFLINE=1 forbids downloading it", f"`hf download {LLAMA}`",
                         "SPARK_LABS_MODEL=<local folder with config.json>")


def test_a_hub_that_cannot_be_reached_is_said_so_within_5_s(tmp_path):
    code, said, seconds = run(["serve", "--backend", "transformers"], tmp_path,
                              HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    assert_refused_early(code, said, seconds, f"{LLAMA} cannot be loaded here", "cannot be reached",
                         "connect this machine to the network")


def test_serve_model_flag_that_does_not_exist(tmp_path):
    code, said, seconds = run(["serve", "--model", "does/not-exist"], tmp_path, HF_HUB_OFFLINE="1")
    assert_refused_early(code, said, seconds, "--model does/not-exist cannot be loaded here",
                         "pass --model <local folder with config.json>")


def test_stand_in_hub_gated_model_without_a_token_names_token_and_licence(tmp_path):
    """A STAND-IN Hub answers as the real one does for the gated Llama to a caller without a token."""
    with stand_in_hub() as (url, _):
        code, said, seconds = run(["build", "compile"], tmp_path, HF_ENDPOINT=url)
    assert_refused_early(code, said, seconds, f"{GATED} cannot be loaded here: it is a gated model and no Hugging "
                         "Face token is set", f"accept its licence on {url}/{GATED}", "export HF_TOKEN=hf_…")


def test_the_tiny_profile_needs_no_network_at_all(tmp_path):
    """The embedded model is packaged: doctor on tiny reports it ready with the Hub unreachable."""
    code, said, _ = run(["doctor"], tmp_path, SPARK_LABS_PROFILE="tiny", HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}")
    assert code == 0, said
    assert "model HuggingFaceTB/SmolLM2-135M-Instruct: ready, from the embedded copy packaged with spark-labs" in said
