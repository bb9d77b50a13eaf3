"""Work done once before serving, and what it buys (lab 03).

- :mod:`.compiled`: a transformers model's decode step over a static KV cache, compiled (CUDA graphs on a GPU).
- :mod:`.gguf_variants`: GGUF variants of one model (F16 -> Q8_0 -> Q4_K_M) built with llama.cpp's quantizer.
- :mod:`.checks`: lab 03's checkpoints, naming the mistake a wrong answer shows.
- :mod:`.quality`: perplexity of a GGUF on a fixed text, from llama.cpp's logits.
"""

from .checks import break_even_problems, pick_problems, prediction_problems
from .figures import compile_figure, variant_figure
from .gguf_variants import BuiltVariant, build_variants
from .measure import decoder_table, pick_variant, variant_table, weight_only_table
from .trtllm import checkpoints_for, options_path, serve_args, write_extra_options

__all__ = ["BuiltVariant", "break_even_problems", "build_variants", "checkpoints_for", "compile_figure",
           "decoder_table", "options_path", "pick_problems", "pick_variant", "prediction_problems", "serve_args",
           "variant_figure", "variant_table", "weight_only_table", "write_extra_options"]
