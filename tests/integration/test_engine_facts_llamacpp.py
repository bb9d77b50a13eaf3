"""The harness reads every engine fact from the registry: a new EngineSpec is measured, cross-checked
and reset without a line of bench code changing."""

from __future__ import annotations

from spark_labs.bench.clients import Target, reset_prefix_cache
from spark_labs.engines import ENGINES


def test_cache_reset_of_an_engine_without_an_endpoint_says_so(llamacpp_engine):
    """Real llama.cpp: the registry gives it no cache-reset route, so nothing is tried and the report says why."""
    message = reset_prefix_cache(Target.from_engine(llamacpp_engine))
    assert message.startswith("llamacpp has no cache-reset endpoint")


def test_cache_reset_of_an_unknown_server_tries_every_registered_route(llamacpp_engine):
    """Real llama.cpp addressed by URL only: every engine's route is tried, and each refusal is named."""
    message = reset_prefix_cache(Target("server", llamacpp_engine.url, llamacpp_engine.served_name))
    assert message.startswith("prefix cache not reset")
    for spec in ENGINES.values():
        if spec.cache_reset_path:
            assert spec.cache_reset_path in message
