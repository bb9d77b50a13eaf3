"""Every model id the course names is on the allow-list of vendored configs, and what the profiles claim about
each model (parameters, KV bytes per token) is what calc computes from its config. Offline: the configs ship
in the package, each with the URL of the config.json it mirrors and the date it was checked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from spark_labs import profiles, sizing
from spark_labs.errors import ProfileError
from spark_labs.models.catalog import catalog, check_model_id, vendored_config

ROOT = Path(__file__).resolve().parents[2]


def _profile_models() -> list[profiles.ModelRef]:
    models = []
    for name in profiles.PROFILES:
        profile = profiles.get_profile(name)
        models += [profile.default_model, *profile.lab_models.values()]
    return models


@pytest.mark.parametrize("model", _profile_models(), ids=lambda m: m.hf_id)
def test_every_profile_model_is_a_vendored_id_whose_size_matches_the_claim(model):
    entry = check_model_id(model.hf_id)
    shape = sizing.ModelShape.from_config(entry.config())
    params = sizing.param_count(shape)
    # The publisher's figure is rounded on some cards (Qwen3-8B: "8.2B"); calc leaves out Qwen3's tiny q/k norms.
    assert params == pytest.approx(entry.published_params, rel=0.005), (model.hf_id, params)
    assert model.params_billion == pytest.approx(params / 1e9, abs=0.005), "the plan's parameter claim drifted"
    assert model.kv_bytes_per_token == sizing.kv_bytes_per_token(shape, "bfloat16")


def test_calc_known_models_are_the_vendored_configs():
    for name, shape in sizing.KNOWN_MODELS.items():
        assert shape == sizing.ModelShape.from_config(vendored_config(name))


def test_qwen3_8b_sizes_from_its_config():
    shape = sizing.known_model("Qwen/Qwen3-8B")
    assert sizing.kv_bytes_per_token(shape) == 2 * 36 * 8 * 128 * 2  # 144 KiB: 36 layers, 8 KV heads of 128
    assert round(sizing.param_count(shape) / 1e9, 1) == 8.2


def test_a_model_id_that_does_not_exist_fails_with_the_nearest_real_one():
    """The original module's `Qwen/Qwen3-8B-Instruct` does not exist: Qwen3 is one hybrid-thinking model."""
    with pytest.raises(ProfileError) as err:
        check_model_id("Qwen/Qwen3-8B-Instruct")
    message = str(err.value)
    assert "Did you mean 'Qwen/Qwen3-8B'?" in message and "huggingface.co" in message


def test_every_catalog_entry_names_its_source_date_and_file():
    files = {path.name for path in (ROOT / "src" / "spark_labs" / "data" / "configs").glob("*.json")} - {"index.json"}
    assert {entry.file for entry in catalog().values()} == files, "a vendored config without an index entry"
    for hf_id, entry in catalog().items():
        assert entry.source == f"https://huggingface.co/{hf_id}/blob/main/config.json"
        assert re.match(r"\d{4}-\d{2}-\d{2}: ", entry.checked), hf_id
        assert entry.config()["_name_or_path"] == hf_id


def test_the_spark_compose_file_names_only_known_models():
    services = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())["services"]
    for service in services.values():
        command = service.get("command") or []
        for flag, word in zip(["", *command], command):
            if flag == "--out":  # a folder (the validate service's reports), not a model
                continue
            if re.fullmatch(r"[\w.-]+/[\w.-]+", word) and not word.startswith(("docker/", "/")):
                check_model_id(word)  # raises on an unknown id


def test_a_model_override_carries_none_of_the_default_models_claims(monkeypatch):
    monkeypatch.setenv(profiles.MODEL_ENV, "Qwen/Qwen3-8B")
    model = profiles.plan("01", "spark").model
    assert model.hf_id == "Qwen/Qwen3-8B" and model.params_billion is None and model.kv_bytes_per_token is None
