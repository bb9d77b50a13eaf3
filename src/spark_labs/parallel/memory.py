"""What each node holds when a model is split, and the per-token decode time each split predicts.

Tensor parallel (TP) cuts every layer's matrices across the nodes: each node streams 1/N of the weights per
token, but every layer ends in an all-reduce of the activations (two per layer: after attention and after the
MLP), each paying the link's latency. Pipeline parallel (PP) gives each node whole layers: one hand-off of the
activations per stage boundary, but for one sequence the stages run one after another (the other node idles:
the pipeline *bubble*), so a token still streams every weight on some node, one node at a time.
"""

from __future__ import annotations

import math

from ..hardware.datasheets import hardware_spec
from ..sizing import ModelShape, kv_bytes_per_token, param_count, weight_bytes

SPARK_NODE_GB = 128.0  # GB of unified memory in one DGX Spark (datasheet)

# meta-llama/Llama-3.1-405B-Instruct's config.json (hidden 16384, 126 layers, 128 heads, 8 KV heads, MLP 53248,
# vocabulary 128256): the 405B of NVIDIA's two-Spark playbook (there as the AWQ-INT4 checkpoint).
LLAMA_3_1_405B = ModelShape(name="meta-llama/Llama-3.1-405B-Instruct", hidden_size=16384, num_layers=126,
                            num_heads=128, num_kv_heads=8, intermediate_size=53248, vocab_size=128256)


def nodes_needed(weights_gb: float, kv_gb: float, node_gb: float = SPARK_NODE_GB, usable: float = 0.9) -> int:
    """The fewest nodes whose usable memory (``usable`` × ``node_gb`` each) holds the weights and the KV cache."""
    return max(1, math.ceil((weights_gb + kv_gb) / (node_gb * usable) - 1e-9))


def per_token_ms(weights_gb: float, bandwidth_gbs: float, nodes: int, parallel: str, layers: int,
                 hop_ms: float) -> float:
    """Decode time of one token at batch 1, memory-bound: TP streams weights/N per node in parallel plus two
    all-reduces per layer; PP streams all the weights one stage after another plus one hop per boundary."""
    if parallel == "tensor":
        return weights_gb / (nodes * bandwidth_gbs) * 1000 + (2 * layers * hop_ms if nodes > 1 else 0.0)
    if parallel == "pipeline":
        return weights_gb / bandwidth_gbs * 1000 + (nodes - 1) * hop_ms
    raise ValueError(f"parallel must be 'tensor' or 'pipeline', got {parallel!r}")


def memory_plan(shape: ModelShape, weight_dtype: str = "bfloat16", nodes: int = 2, parallel: str = "tensor",
                context: int = 8192, batch: int = 4, kv_dtype: str = "bfloat16", node_gb: float = SPARK_NODE_GB):
    """One row per node: weights and KV cache it holds (GB) and the share of its memory that is.

    TP: every node holds 1/N of each layer (and of the KV heads). PP: layers split as evenly as possible, the
    first stage also holding the embeddings and the last the output head (vLLM's placement)."""
    import pandas as pd

    total_w = weight_bytes(shape, weight_dtype)
    per_param = total_w / param_count(shape)
    embed = shape.vocab_size * shape.hidden_size * per_param
    head = 0.0 if shape.tie_embeddings else embed
    kv_layer = kv_bytes_per_token(shape, kv_dtype) / shape.num_layers * context * batch
    rows = []
    for index in range(nodes):
        if parallel == "tensor":
            w, kv, layers = total_w / nodes, kv_layer * shape.num_layers / nodes, shape.num_layers
        else:
            base, extra = divmod(shape.num_layers, nodes)
            layers = base + (1 if index < extra else 0)
            w = (total_w - embed - head) * layers / shape.num_layers
            w += (embed if index == 0 else 0.0) + (head if index == nodes - 1 else 0.0)
            kv = kv_layer * layers
        rows.append({"node": index + 1, "layers": layers, "weights_gb": w / 1e9, "kv_cache_gb": kv / 1e9,
                     "total_gb": (w + kv) / 1e9, "share_of_node": (w + kv) / (node_gb * 1e9)})
    return pd.DataFrame(rows)


def spark_bandwidth_gbs() -> float:
    return hardware_spec("dgx-spark").bandwidth_gbs
