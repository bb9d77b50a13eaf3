"""The room check every build runs before it starts: will what it holds fit in memory?"""

from __future__ import annotations

from ..errors import InsufficientMemoryError


def ensure_memory(needed: float, what: str, then: str, free_memory: float | None = None) -> None:
    """Raise :class:`InsufficientMemoryError` when ``needed`` bytes exceed the memory available for models.

    ``what`` names the build ("loading the NF4 variant"), ``then`` says what did not happen and what to do;
    ``free_memory`` (bytes) overrides the reading.
    """
    if free_memory is None:
        from ..hardware.memory import memory_snapshot

        free_memory = memory_snapshot().available_for_models
    if free_memory < needed:
        raise InsufficientMemoryError(f"{what} holds about {needed / 1e9:.2f} GB in memory, but only "
                                      f"{free_memory / 1e9:.2f} GB is available. {then}")
