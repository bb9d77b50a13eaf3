"""Which of the six engines could start right now on this machine, and if not, what stands in the way.

For each engine: how the spark profile runs it (its container image, or a native install where NVIDIA's
playbooks install it on the host: Ollama, llama.cpp), whether that is here, whether its port is free, and
whether the memory it will ask for fits. The memory each engine asks for is read from the command the
profile builds: vLLM wants ``--gpu-memory-utilization`` × total memory free at start-up and SGLang
``--mem-fraction-static`` × total; the others load the weights plus a KV cache for the profile's context.
On unified memory (DGX Spark) "available" counts page cache that the GPU allocator reclaims slowly, so the
headroom is given both ways. All readings are injectable (:class:`ReadinessReaders`) so tests can be a GB10.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import ProfileError
from ..hardware.memory import DROP_CACHES, MemorySnapshot
from ..models.catalog import vendored_config
from ..profiles import Profile
from ..sizing import ModelShape, kv_bytes_per_token, weight_bytes
from .engine_spec import Availability, EngineSpec
from .ports import port_holder, port_is_free
from .profile_args import spark_command
from .registry import ENGINES

GB = 1e9


def docker_installed() -> bool:
    """Whether the ``docker`` command is here (its daemon not asked: see :func:`docker_usable`)."""
    return shutil.which("docker") is not None


def docker_image_present(image: str) -> bool | None:
    """True/False from ``docker image inspect``; None when there is no usable Docker here."""
    if not docker_installed():
        return None
    try:
        result = subprocess.run(["docker", "image", "inspect", image], capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0 and b"No such image" not in result.stderr:
        return None  # the daemon is down or refuses us: we cannot tell
    return result.returncode == 0


NO_DOCKER = ("there is no Docker here. On a DGX Spark install Docker with NVIDIA's container toolkit (the playbooks' "
             "set-up); inside the course's lab container, mount the host's Docker socket "
             "(-v /var/run/docker.sock:/var/run/docker.sock) or start the engine services of docker/compose.yaml")


def docker_usable() -> bool:
    """Whether ``docker`` is here and its daemon answers (the spark profile's engines run as its containers)."""
    if not docker_installed():
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@dataclass
class ReadinessReaders:
    image_present: Callable[[str], bool | None] = docker_image_present
    port_free: Callable[[int], bool] = port_is_free
    port_holder: Callable[[int], str | None] = port_holder
    native: Callable[[EngineSpec], Availability] = field(default=lambda spec: spec.availability())


@dataclass(frozen=True)
class EngineReadiness:
    engine: str
    runs_as: str  # "container IMAGE" or "native"
    installed: bool | None  # image present / native install found; None: cannot tell (no Docker here)
    port_free: bool
    need_bytes: float | None  # None: the model is not in the catalog, so its size is unknown
    headroom_bytes: float | None  # available for models − need
    headroom_without_cache_bytes: float | None  # the same if the page cache is not reclaimed in time
    problems: tuple[str, ...]

    @property
    def ready(self) -> bool:
        return not self.problems


def memory_need(spec: EngineSpec, profile: Profile, snapshot: MemorySnapshot) -> float | None:
    """Bytes ``spec`` will ask for when it starts with the profile's default model, or None if unknown."""
    flag = spec.memory_fraction_flag
    if flag:
        command = spark_command(spec)
        total = snapshot.gpu_total if snapshot.gpu_total and not snapshot.unified_memory else snapshot.system_total
        return float(command[command.index(flag) + 1]) * total
    model = profile.model_for(None)  # SPARK_LABS_MODEL, if the learner set it
    try:
        shape = ModelShape.from_config(vendored_config(model.hf_id))
    except ProfileError:
        return None
    return weight_bytes(shape, model.dtype) + kv_bytes_per_token(shape, model.dtype) * profile.sizes.max_model_len


def engine_readiness(profile: Profile, snapshot: MemorySnapshot, readers: ReadinessReaders | None = None,
                     model_problem: str | None = None) -> list[EngineReadiness]:
    """One row per engine. ``model_problem``: why the profile's model cannot be loaded here, which stops every
    engine that loads Hugging Face models (GGUF engines take a file the learner converts, see lab 01)."""
    r = readers or ReadinessReaders()
    rows = []
    for spec in ENGINES.values():
        problems = []
        if model_problem and spec.model_format == "hf":
            problems.append("the model cannot be loaded here (see its line above)")
        if spec.native_on_spark:
            available = r.native(spec)
            runs_as, installed = "native", bool(available)
            if not available:
                present = r.image_present(spec.docker_image) if spec.docker_image else None
                runs_as, installed = f"container {spec.docker_image}", present
                if not present:
                    problems.append(f"not installed ({available.reason}); {available.install_hint}")
        else:
            runs_as, installed = f"container {spec.docker_image}", r.image_present(spec.docker_image)
            if installed is None:
                problems.append("Docker is not usable here: cannot check the image (install Docker and the "
                                "NVIDIA container toolkit, or run inside the lab container)")
            elif not installed:
                problems.append(f"image not pulled: docker pull {spec.docker_image}")
        free = r.port_free(spec.default_port)
        if not free:
            holder = r.port_holder(spec.default_port) or "another process"
            problems.append(f"port {spec.default_port} is taken by {holder}")
        need = memory_need(spec, profile, snapshot)
        headroom = without_cache = None
        if need is not None:
            headroom = snapshot.available_for_models - need
            without_cache = headroom - snapshot.page_cache if snapshot.unified_memory else headroom
            if headroom < 0:
                problems.append(f"needs {need / GB:.0f} GB, {snapshot.available_for_models / GB:.0f} GB available: "
                                "stop other engines or kernels, or use a smaller model")
            elif without_cache < 0:
                problems.append(f"fits only if the kernel gives back page cache in time: {DROP_CACHES}")
        rows.append(EngineReadiness(spec.name, runs_as, installed, free, need, headroom, without_cache,
                                    tuple(problems)))
    return rows


def page_cache_note(snapshot: MemorySnapshot) -> str | None:
    """The note printed above the readiness table when page cache could stand in a model's way."""
    if not snapshot.unified_memory and snapshot.page_cache <= 0.1 * max(snapshot.system_total, 1):
        return None
    why = ("on unified memory the GPU allocator reclaims it slowly, so headroom is shown with and without it"
           if snapshot.unified_memory else "the kernel gives it back on demand")
    return (f"page cache: {snapshot.page_cache / GB:.0f} GB of the {snapshot.available_for_models / GB:.0f} GB "
            f"available is files read earlier (model weights); {why}. Drop it before a large load: {DROP_CACHES}")
