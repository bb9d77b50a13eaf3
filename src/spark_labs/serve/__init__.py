"""spark-labs' OpenAI-compatible server: the "transformers" engine and the base of lab 05's gateway."""

from .app import create_app

__all__ = ["create_app"]
