"""`spark-labs doctor` on a DGX Spark: which of the six engines could start now. Docker, the engines' ports and a
GB10's memory are not here, so their readings are injected (as tests/test_memory.py does); the decisions, the
memory arithmetic from the spark commands and calc, and the printed table are the real ones."""

from __future__ import annotations

from spark_labs.doctor import main


def test_doctor_on_this_machine_with_the_spark_profile_runs_and_reports(monkeypatch, capsys, tmp_path):
    """This box has no GPU and no Docker: the spark profile's doctor still prints its verdict for every engine.
    Its models are in an HF cache built for the test (placeholder files: found, not loaded)."""
    from hf_cache_support import cache_model

    from spark_labs.profiles import get_profile

    monkeypatch.setenv("SPARK_LABS_PROFILE", "spark")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    spark = get_profile("spark")
    for lab in (None, *spark.lab_models):
        cache_model(tmp_path / "hub", spark.model_for(lab).hf_id)
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "ready to start now?" in out and "vLLM" in out


def test_doctor_exits_1_when_a_model_cannot_be_loaded_here(monkeypatch, capsys, tmp_path):
    """Offline with an empty HF cache: each model's line says not ready, why and the fix (issue 25)."""
    monkeypatch.setenv("SPARK_LABS_PROFILE", "spark")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main([]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "model meta-llama/Llama-3.1-8B-Instruct: not ready: meta-llama/Llama-3.1-8B-Instruct cannot be loaded" \
        in out
    assert "HF_HUB_OFFLINE=1 forbids downloading it" in out
