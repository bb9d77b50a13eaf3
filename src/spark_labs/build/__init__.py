"""Work done once before serving, and what it buys (lab 03).

- :mod:`.compiled`: a transformers model's decode step over a static KV cache, compiled (CUDA graphs on a GPU).
- :mod:`.gguf_variants`: GGUF variants of one model (F16 -> Q8_0 -> Q4_K_M) built with llama.cpp's quantizer.
- :mod:`.quality`: perplexity of a GGUF on a fixed text, from llama.cpp's logits.
"""
