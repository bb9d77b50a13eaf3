"""Lab 06 §5's ``OLLAMA_NUM_PARALLEL`` comparison, driven as far as this machine allows: Ollama is not installed
here, so a **launch stand-in hands back the gateway's Ollama API in front of the session's real llama.cpp
server** for each setting, and records the environment each ``ollama serve`` would have been started with.
The requests, the Ollama NDJSON streams and every figure in the table are real."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

from spark_labs.bench import Workload
from spark_labs.engines import resolve_engine
from spark_labs.serve import start_gateway
from spark_labs.ui import num_parallel_compared


def test_each_setting_gets_its_own_server_and_a_measured_row(llamacpp_engine):
    started = []

    @contextlib.contextmanager
    def an_ollama_api(engine, model, **options):
        started.append((engine, model, options))
        with start_gateway(upstreams=[llamacpp_engine.base_url], health_interval_s=30,
                           log_level="warning") as gateway:
            yield SimpleNamespace(url=gateway.url, served_name=llamacpp_engine.served_name,
                                  spec=resolve_engine("ollama"), metrics_url=None)

    requests = Workload("chat", "short_chat", 4, 8).requests()
    table = num_parallel_compared(llamacpp_engine.served_name, requests, levels=(1, 4), concurrency=4,
                                  launch=an_ollama_api)

    assert [(e, m, o["env"]) for e, m, o in started] == [
        ("ollama", llamacpp_engine.served_name, {"OLLAMA_NUM_PARALLEL": "1"}),
        ("ollama", llamacpp_engine.served_name, {"OLLAMA_NUM_PARALLEL": "4"})]
    assert table["OLLAMA_NUM_PARALLEL"].tolist() == [1, 4]
    assert (table["requests"] == 4).all() and (table["failed"] == 0).all()
    assert (table["output tok/s"] > 0).all() and (table["TTFT max ms"] >= table["TTFT p50 ms"]).all()
