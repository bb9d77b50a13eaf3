"""Errors a learner can act on: every message says what happened and what to do next."""

from __future__ import annotations


class SparkLabsError(RuntimeError):
    """Base class for every error the library raises on purpose."""


class ProfileError(SparkLabsError):
    """The requested profile or model does not exist or does not fit this machine."""


class ModelNotFoundError(SparkLabsError):
    """A model (embedded GGUF, exported HF copy, or HF id) could not be found locally."""


class ModelUnavailableError(ModelNotFoundError):
    """A model that cannot be loaded here: no such folder, not cached while offline, gated, or no such HF id."""


class InsufficientMemoryError(SparkLabsError):
    """Not enough free memory for what is about to be loaded."""


class EngineError(SparkLabsError):
    """Base class for inference-engine launch problems."""


class EngineNotInstalledError(EngineError):
    """The engine's binary/package is not available on this machine."""


class PortInUseError(EngineError):
    """The port an engine should listen on is already held by another process."""


class EngineStartError(EngineError):
    """The engine process exited while starting up."""


class EngineTimeoutError(EngineError):
    """The engine did not become ready within the timeout."""
