"""`spark-labs doctor` on a DGX Spark: which of the six engines could start now. Docker, the engines' ports and a
GB10's memory are not here, so their readings are injected (as tests/test_memory.py does); the decisions, the
memory arithmetic from the spark commands and calc, and the printed table are the real ones."""

from __future__ import annotations

from rich.console import Console

from spark_labs import sizing
from spark_labs.doctor import print_readiness
from spark_labs.engines import ENGINES
from spark_labs.engines.engine_spec import Availability
from spark_labs.engines.readiness import ReadinessReaders, engine_readiness, memory_need, page_cache_note
from spark_labs.hardware.memory import DROP_CACHES, MemoryReaders, memory_snapshot
from spark_labs.profiles import get_profile

GB = 10**9
SPARK = get_profile("spark")


def _gb10(available_gb: float, cached_gb: float = 5):
    """A GB10's readings: 128 GB unified, torch sees the GPU, NVML memory queries unsupported."""
    return memory_snapshot(MemoryReaders(
        meminfo=lambda: {"MemTotal": 128 * GB, "MemAvailable": int(available_gb * GB), "Cached": int(cached_gb * GB)},
        unified=lambda: True, nvml=lambda: None,
        torch_cuda=lambda: {"free": 40 * GB, "total": 128 * GB, "allocated": 0, "reserved": 0}))


def _readers(images=(), taken=(), native=()):
    return ReadinessReaders(
        image_present=lambda image: image in images,
        port_free=lambda port: port not in taken,
        port_holder=lambda port: "pid 4242 (vllm serve meta-llama/Llama-3.1-8B-Instruct)",
        native=lambda spec: (Availability(True) if spec.name in native
                             else Availability(False, "not on PATH", "install it")))


def _by_engine(rows):
    return {row.engine: row for row in rows}


def test_a_fresh_spark_with_every_image_pulled_and_free_memory_is_ready_everywhere():
    images = {spec.docker_image for spec in ENGINES.values()}
    rows = _by_engine(engine_readiness(SPARK, _gb10(available_gb=118), _readers(images=images)))
    assert set(rows) == set(ENGINES) and all(row.ready for row in rows.values()), rows
    assert rows["ollama"].runs_as == f"container {ENGINES['ollama'].docker_image}"  # no native install: its image


def test_memory_need_follows_each_engines_own_flags():
    snap = _gb10(available_gb=118)
    assert memory_need(ENGINES["vllm"], SPARK, snap) == 0.7 * 128 * GB  # --gpu-memory-utilization 0.7 of total
    assert memory_need(ENGINES["sglang"], SPARK, snap) == 0.75 * 128 * GB  # --mem-fraction-static 0.75
    shape = sizing.known_model(SPARK.default_model.hf_id)
    expected = sizing.weight_bytes(shape) + sizing.kv_bytes_per_token(shape) * SPARK.sizes.max_model_len
    assert memory_need(ENGINES["trtllm"], SPARK, snap) == expected  # 16 GB of bf16 weights + 1 GiB of KV


def test_a_busy_spark_names_what_stands_in_each_engines_way():
    """vLLM holds port 8000 and ~60 GB: vLLM's port is taken, SGLang's 96 GB no longer fit, Ollama is missing."""
    images = {ENGINES[name].docker_image for name in ("vllm", "sglang", "trtllm", "transformers")}
    rows = _by_engine(engine_readiness(SPARK, _gb10(available_gb=58), _readers(images=images, taken={8000},
                                                                               native={"llamacpp"})))
    assert not rows["vllm"].ready and any("port 8000 is taken by pid 4242" in p for p in rows["vllm"].problems)
    assert not rows["sglang"].ready and any("needs 96 GB, 58 GB available" in p for p in rows["sglang"].problems)
    assert rows["trtllm"].ready and rows["llamacpp"].ready and rows["llamacpp"].runs_as == "native"
    assert not rows["ollama"].ready and any("not installed" in p for p in rows["ollama"].problems)


def test_page_cache_is_named_when_only_it_makes_room():
    """90 GB available, of which 40 GB page cache: vLLM's 90 GB fit only if the cache is given back in time."""
    snap = _gb10(available_gb=95, cached_gb=40)
    rows = _by_engine(engine_readiness(SPARK, snap, _readers(images={ENGINES["vllm"].docker_image})))
    assert rows["vllm"].headroom_bytes > 0 > rows["vllm"].headroom_without_cache_bytes
    assert any(DROP_CACHES in p for p in rows["vllm"].problems)
    assert "40 GB of the 95 GB available" in page_cache_note(snap)


def test_without_docker_the_container_engines_say_they_cannot_tell():
    rows = _by_engine(engine_readiness(SPARK, _gb10(available_gb=118), ReadinessReaders(
        image_present=lambda image: None, port_free=lambda port: True, native=lambda spec: Availability(True))))
    assert rows["vllm"].installed is None and any("Docker is not usable" in p for p in rows["vllm"].problems)
    assert rows["ollama"].ready  # native installs need no Docker


def test_doctor_prints_the_readiness_table_after_the_page_cache_note():
    console = Console(record=True, width=250)
    print_readiness(console, SPARK, _gb10(available_gb=58, cached_gb=30),
                    _readers(images={ENGINES["trtllm"].docker_image}, taken={8000}))
    text = console.export_text()
    assert text.index("page cache: 30 GB") < text.index("ready to start now?")
    assert "TensorRT-LLM" in text and "ready" in text and "port 8000 is taken" in text


def test_a_model_outside_the_catalog_has_an_unknown_need_and_says_so(monkeypatch):
    monkeypatch.setenv("SPARK_LABS_MODEL", "someone/fine-tuned-8b")
    images = {spec.docker_image for spec in ENGINES.values()}
    rows = _by_engine(engine_readiness(SPARK, _gb10(available_gb=118), _readers(images=images)))
    assert rows["trtllm"].need_bytes is None and rows["trtllm"].ready  # unknown size is not a failure
    assert rows["vllm"].need_bytes == 0.7 * 128 * GB  # vLLM's ask does not depend on the model
    console = Console(record=True, width=250)
    print_readiness(console, SPARK, _gb10(available_gb=118), _readers(images=images))
    assert "someone/fine-tuned-8b is not in spark-labs' model catalog" in console.export_text()


def test_a_model_that_cannot_be_loaded_here_stops_every_hf_engine_but_not_the_gguf_ones():
    """On a GPU box with no network doctor said the transformers engine was ready though Llama-3.1-8B was neither
    cached nor reachable (issue 25): the model's problem now stands in each HF-format engine's way."""
    images = {spec.docker_image for spec in ENGINES.values()}
    rows = _by_engine(engine_readiness(SPARK, _gb10(available_gb=118), _readers(images=images),
                                       model_problem="not cached and offline"))
    for name, row in rows.items():
        stopped = "the model cannot be loaded here (see its line above)" in row.problems
        assert stopped is (ENGINES[name].model_format == "hf"), name
    assert not rows["transformers"].ready and rows["llamacpp"].ready


def test_a_ready_engine_leaves_no_failed_progress_bar():
    """tqdm marks a bar closed below its total as failed (red in a notebook, and left on screen); a start's bar
    counts up to the timeout, so a start that succeeded must end at its own time. A failed start stays below."""
    from tqdm import tqdm

    from spark_labs.engines.launcher import _close_bar

    ready, failed = tqdm(total=240, disable=True), tqdm(total=240, disable=True)
    ready.n = failed.n = 48
    _close_bar(ready, complete=True)
    _close_bar(failed, complete=False)
    assert ready.n == ready.total == 48 and failed.n < failed.total
