"""What the launcher needs to know about one inference engine.

An :class:`EngineSpec` is pure data plus command builders: it never starts anything. The launcher
(:mod:`spark_labs.engines.launcher`) turns a spec into a running, supervised process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..profiles import ModelRef
    from .launcher import EngineHandle


@dataclass(frozen=True)
class Availability:
    """Whether an engine can run here; when not, ``install_hint`` says how to get it for this profile."""

    ok: bool
    reason: str = ""
    install_hint: str = ""

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True)
class MultiNodeRecipe:
    """How an engine serves one model across several machines over a Ray cluster (its source is cited where the
    registry defines it). :mod:`spark_labs.engines.multinode` turns it into commands; it names no engine."""

    parallel_flags: dict[str, str]  # "tensor" / "pipeline" -> the flag taking the number of nodes
    backend_flag: str  # the flag choosing the distributed executor
    backend: str  # its value for a Ray cluster
    local_backend: str  # its value for ranks on one machine (no Ray)
    link_env: tuple[str, ...]  # variables set to the fast link's interface name on every node (NCCL, Gloo, UCX, ...)
    node_ip_env: tuple[str, ...]  # variables set to each node's own address on the link
    head_ip_env: tuple[str, ...]  # variables set to the head node's address
    fixed_env: dict[str, str]  # variables with one value on every node
    container_flags: tuple[str, ...]  # `docker run` flags of a Ray node's container
    container_mount: str  # where the host's HF cache is mounted inside it
    serve_prefix: tuple[str, ...]  # the serving command inside the head's container (the model follows it)
    # Given the number of ranks on this machine: what the engine's CPU build needs to run them side by side.
    cpu_env: Callable[[int], dict[str, str]] | None = None
    # Given (config.json dict, "tensor" | "pipeline", size): why the engine refuses that split, or None.
    split_problem: Callable[[dict, str, int], str | None] | None = None
    # Flags the engine's local (CPU) build cannot combine with a pipeline split, each with why.
    pipeline_refused_flags: dict[str, str] = field(default_factory=dict)
    # Log lines of a refused Ray start and what they mean (e.g. a CPU build without a Ray executor).
    ray_hints: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class EngineSpec:
    name: str  # key used everywhere: vllm, sglang, trtllm, llamacpp, ollama, transformers
    display_name: str
    protocol: str  # "openai" or "ollama"
    default_port: int
    ready_path: str  # GET on this path returns 200 once the engine serves requests
    model_format: str  # "hf" (safetensors dir or HF id) or "gguf"
    metrics_path: str | None = None  # Prometheus exposition, where the engine has one
    docker_image: str | None = None
    # Builders, given (model, port, host, extra_args) → argv. Kept as callables so each engine's flags
    # live next to its definition in registry.py.
    build_local: Callable[..., list[str]] | None = None
    build_docker: Callable[..., list[str]] | None = None
    check_available: Callable[[], Availability] | None = None
    # Runs once the engine answers its ready probe (Ollama: import the GGUF with a Modelfile).
    after_ready: Callable[[EngineHandle], None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    startup_hints: tuple[tuple[str, str], ...] = ()  # (log substring, likely cause) pairs
    # Other spellings resolve_engine accepts, written as it compares them: lower case, no '-', '.' or '_'.
    aliases: tuple[str, ...] = ()

    # --- how the spark profile runs it on a DGX Spark -----------------------------------------------------
    # Given (context length, the model's reasoning parser or None, docker?) -> the profile's serving flags,
    # added on top of the recipe; None: the profile adds nothing.
    build_spark_args: Callable[[int, str | None, bool], list[str]] | None = None
    # True where NVIDIA's playbooks install it on the host rather than in a container (ours: the lab itself).
    native_on_spark: bool = False
    # The flag whose value is the share of memory it claims at start-up, where it has one.
    memory_fraction_flag: str | None = None
    # The flag that switches off CUDA graphs (eager mode), where it has one.
    eager_flag: str | None = None

    # --- what the benchmark harness (spark_labs.bench) needs to know; it names no engine itself ------
    # Flags added whenever the harness starts this engine itself, flags added only on a CPU (start-up
    # shortcuts that would change what a GPU run measures), and the flag that caps its context length
    # (given the profile's max_model_len), where it has one.
    bench_args: tuple[str, ...] = ()
    cpu_bench_args: tuple[str, ...] = ()
    context_length_flag: str | None = None
    # Why this engine gets fewer requests and concurrency levels on the tiny profile (it is slow on a
    # small CPU), or None.
    slow_on_cpu: str | None = None
    # POST here empties the prefix cache before a measured run, and what to know when it refuses.
    cache_reset_path: str | None = None
    cache_reset_note: str = ""
    # The engine's Prometheus series for our metric names (ttft, tpot, itl, e2e / prompt_tokens, ...),
    # for the server-side cross-check. Counters are named without their ``_total`` suffix.
    histograms: dict[str, str] = field(default_factory=dict)
    counters: dict[str, str] = field(default_factory=dict)
    # Its prefix-cache counters, in tokens, named without ``_total``: "queries" (prompt tokens looked up)
    # and "hits" (found in the cache); empty when it publishes none.
    prefix_cache_counters: dict[str, str] = field(default_factory=dict)
    # What the engine calls its prefix cache ("prefix caching", "radix cache") and the flags that switch it
    # off (it is on by default); empty where it has none the course can switch.
    prefix_cache_name: str = ""
    prefix_cache_off_args: tuple[str, ...] = ()
    # The environment variable of its server that sets how many requests it decodes at once (read at start).
    parallel_env: str | None = None
    # The start-up log line that reports the GiB of KV cache it allocated (a regex with a ``gib`` group).
    kv_memory_log: str | None = None
    # Flags that make the engine put its own per-request timings into each response (exact server-side
    # percentiles for ``spark-labs bench accuracy``); empty when it has none.
    per_request_metrics_args: tuple[str, ...] = ()
    # The original course module's README rates each engine's prefill and decode with 1-5 stars; lab 01
    # holds those claims against measured stars. None: the module rated no such engine.
    module_stars: tuple[int, int] | None = None
    # Speculative decoding the launcher can switch on: method names (spark-labs' words) and a builder
    # (method, draft length k) -> the engine's own flags. Empty: none that starts from flags alone.
    speculative_methods: tuple[str, ...] = ()
    build_speculative: Callable[[str, int, str | None], list[str]] | None = None
    # The engine's spec-decode counters on /metrics (drafts, draft_tokens, accepted, accepted_per_position
    # labelled by ``position``), named without ``_total``; empty when it reports no acceptance.
    spec_decode_counters: dict[str, str] = field(default_factory=dict)
    # True where spark-labs runs its own speculative verification loop on this engine's model in process
    # (spark_labs.speculative.runner) instead of starting a server with speculation switched on.
    speculative_loop: bool = False
    # Request fields that make a temperature-0 answer plain greedy (a sampler default it applies otherwise).
    greedy_request_fields: dict[str, object] = field(default_factory=dict)
    # Serving one model across several machines (Ray head + workers); None: one machine only.
    multinode: MultiNodeRecipe | None = None

    @property
    def short_name(self) -> str:
        """The display name without the role in brackets: "TensorRT-LLM" for "TensorRT-LLM (trtllm-serve)"."""
        return self.display_name.split(" (")[0]

    def harness_args(self, max_model_len: int, device: str = "cpu") -> list[str]:
        """Flags for an engine the harness starts itself on a profile with ``max_model_len`` and ``device``."""
        context = [self.context_length_flag, str(max_model_len)] if self.context_length_flag else []
        return [*self.bench_args, *(self.cpu_bench_args if device == "cpu" else ()), *context]

    def spark_serving_args(self, max_model_len: int, reasoning_parser: str | None, docker: bool) -> list[str]:
        """The spark profile's serving flags, as ``--flag value`` pairs (context length, memory, parser)."""
        return self.build_spark_args(max_model_len, reasoning_parser, docker) if self.build_spark_args else []

    def weight_dtype(self, model: ModelRef) -> str:
        """What a decode step streams: GGUF engines run the quantised file, the others the HF weights."""
        if self.model_format == "gguf" and model.quantization:
            return model.quantization.lower()
        return model.dtype

    def speculative_args(self, method: str, k: int, draft: str | None = None) -> list[str]:
        """Flags that start this engine with speculative ``method`` drafting ``k`` tokens per step: "ngram"
        (prompt lookup), or "draft" / "eagle3" with ``draft``, the draft model or EAGLE-3 head (an HF id)."""
        from ..errors import EngineError

        if method not in self.speculative_methods:
            offer = (f"the methods spark-labs can start it with are: {', '.join(self.speculative_methods)}"
                     if self.speculative_methods else "spark-labs starts it without speculation only")
            raise EngineError(f"speculative method {method!r} is not available for {self.display_name}: {offer} "
                              "(docs/speculative.md lists the Spark set-ups)")
        if int(k) != k or k < 1:
            raise EngineError(f"the draft length k must be a whole number >= 1 (e.g. 4), got {k!r}")
        if method != "ngram" and not draft:
            raise EngineError(f"speculative method {method!r} needs its draft: the draft model or EAGLE-3 head "
                              "trained for the target (an HF id), e.g. draft='nvidia/Llama-3.1-8B-Instruct-FP4'")
        return self.build_speculative(method, int(k), draft)

    def availability(self) -> Availability:
        if self.check_available is None:
            return Availability(False, f"{self.display_name} has no local launcher", "")
        return self.check_available()

    def model_arg(self, model: ModelRef | str) -> str:
        """The model argument the engine expects: a GGUF file or an HF id / directory."""
        if isinstance(model, str):
            return model
        return model.gguf_path() if self.model_format == "gguf" else model.hf_path()

    def local_command(
        self, model: ModelRef | str, port: int, host: str = "127.0.0.1", extra_args: Sequence[str] = (),
        served_name: str | None = None,
    ) -> list[str]:
        if self.build_local is None:
            raise NotImplementedError(f"{self.display_name} cannot run as a local process")
        return self.build_local(
            model=self.model_arg(model), port=port, host=host, extra_args=list(extra_args),
            served_name=served_name or _served_name(model),
        )

    def docker_command(
        self, model: ModelRef | str, port: int | None = None, extra_args: Sequence[str] = (),
        served_name: str | None = None, image: str | None = None, **options: object,
    ) -> list[str]:
        """``docker run …`` for the spark profile; ``options`` are engine-specific (vLLM: enforce_eager)."""
        if self.build_docker is None:
            raise NotImplementedError(f"{self.display_name} has no container recipe")
        if isinstance(model, str):
            model_arg = model
        else:  # GGUF engines mount a local file; HF engines download the id inside the container
            model_arg = self.model_arg(model) if self.model_format == "gguf" else model.hf_id
        image = image or self.docker_image
        command = self.build_docker(
            model=model_arg, port=port or self.default_port, extra_args=list(extra_args),
            served_name=served_name or _served_name(model), image=image, **options,
        )
        for path in (model_arg, *extra_args):
            command = mount_local_model(command, str(path), image)
        return command


def mount_local_model(command: list[str], model_arg: str, image: str) -> list[str]:
    """A model given as a folder or file on this machine (``SPARK_LABS_MODEL=/models/llama``), or any other
    host path the engine is given (TensorRT-LLM's speculative options file), exists in the container only if
    it is mounted: mount it read-only at the same path, unless a volume already holds it."""
    path = Path(model_arg)
    if not path.is_absolute() or not path.exists():
        return command  # an HF id (the engine downloads it into the mounted HF cache), a flag, a number
    inside = [volume.split(":")[1] for flag, volume in zip(command, command[1:]) if flag == "-v"]
    if any(path == Path(mounted) or Path(mounted) in path.parents for mounted in inside):
        return command
    at = command.index(image)
    return [*command[:at], "-v", f"{path}:{path}:ro", *command[at:]]


def _served_name(model: ModelRef | str) -> str:
    return model if isinstance(model, str) else model.served_name
