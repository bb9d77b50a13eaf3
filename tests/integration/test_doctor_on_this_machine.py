"""`spark-labs doctor` on a DGX Spark: which of the six engines could start now. Docker, the engines' ports and a
GB10's memory are not here, so their readings are injected (as tests/test_memory.py does); the decisions, the
memory arithmetic from the spark commands and calc, and the printed table are the real ones."""

from __future__ import annotations

from spark_labs.doctor import main


def test_doctor_on_this_machine_with_the_spark_profile_runs_and_reports(monkeypatch, capsys):
    """This box has no GPU and no Docker: the spark profile's doctor still prints its verdict for every engine."""
    monkeypatch.setenv("SPARK_LABS_PROFILE", "spark")
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "ready to start now?" in out and "vLLM" in out
