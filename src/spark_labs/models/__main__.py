"""``python -m spark_labs.models``: export the embedded model once (what ``make install`` runs)."""

from .embedded import prepare_embedded_model

print(f"embedded model (HF safetensors): {prepare_embedded_model()}")
