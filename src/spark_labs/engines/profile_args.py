"""The spark profile's serving flags for each engine, added on top of its recipe in registry.py.

The registry knows how to start an engine; this module knows what the spark profile asks of it on a
DGX Spark: how long a context, how much of the unified memory, which reasoning parser. Each engine's own
flags are its ``EngineSpec.build_spark_args`` (values and sources in :mod:`spark_labs.engines.registry`).
The tiny profile adds nothing: its commands are the plain recipes the tests start for real.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..profiles import ModelRef, Profile, get_profile
from .engine_spec import EngineSpec
from .registry import resolve_engine


def serving_args(engine: str | EngineSpec, model: ModelRef | str, profile: Profile, docker: bool) -> list[str]:
    """Flags the profile adds for ``engine`` serving ``model``, as ``--flag value`` pairs (none on tiny)."""
    if profile.name != "spark":
        return []
    parser = model.reasoning_parser if isinstance(model, ModelRef) else None
    return resolve_engine(engine).spark_serving_args(profile.sizes.max_model_len, parser, docker)


def merge_args(profile_args: Sequence[str], caller_args: Sequence[str]) -> list[str]:
    """The profile's ``--flag value`` pairs that the caller does not set, then the caller's arguments."""
    given = {arg for arg in caller_args if arg.startswith("-")}
    pairs = zip(profile_args[::2], profile_args[1::2], strict=True)
    return [*(word for flag, value in pairs if flag not in given for word in (flag, value)), *caller_args]


def spark_command(engine: str | EngineSpec, model: ModelRef | str | None = None, *, lab: str | None = None,
                  port: int | None = None, eager: bool = False, docker: bool = True,
                  extra_args: Sequence[str] = ()) -> list[str]:
    """The command the spark profile runs for ``engine`` (container recipe unless ``docker=False``).

    ``eager=True`` adds vLLM's ``--enforce-eager`` (CUDA graphs off); other engines have no such switch.
    """
    spec = resolve_engine(engine)
    if eager and not spec.eager_flag:
        raise ValueError(f"eager=True switches off vLLM's CUDA graphs; {spec.display_name} has no such switch. "
                         "Drop eager= for this engine.")
    profile = get_profile("spark")
    model_ref = model if model is not None else profile.model_for(lab)
    # The eager flag goes first, where vLLM's container recipe puts it too (docker_command(enforce_eager=True)).
    args = [*([spec.eager_flag] if eager else []), *merge_args(serving_args(spec, model_ref, profile, docker),
                                                               extra_args)]
    if docker:
        return spec.docker_command(model_ref, port=port, extra_args=args)
    return spec.local_command(model_ref, port=port or spec.default_port, extra_args=args)
