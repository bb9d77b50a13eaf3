"""Lab 03's build room: GGUF variants built with the real gguf library and llama.cpp's quantizer, scored by
llama.cpp's logits; the static-cache decoder on the real embedded model; the room check; the command line."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from spark_labs import sizing
from spark_labs.errors import InsufficientMemoryError
from spark_labs.models.embedded import embedded_gguf_path, prepare_embedded_model
from spark_labs.variants.gguf_variants import build_variants, predicted_bytes
from spark_labs.variants.quality import perplexity


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    """F16 and Q8_0 of the embedded model (Q4_K_M runs in the lab; the same quantizer call makes it)."""
    return build_variants(embedded_gguf_path(), tmp_path_factory.mktemp("variants"), ["F16", "Q8_0"])


# real llama.cpp / transformers on the embedded model: seconds each
def test_variants_are_the_size_calc_predicts_and_keep_quality(variants):
    f16, q8 = variants
    assert [v.name for v in variants] == ["F16", "Q8_0"] and all(v.path.is_file() for v in variants)
    for variant in variants:
        # The file adds the tokenizer and metadata (a few MB) to the weights calc counts.
        assert 0 < variant.size_bytes - predicted_bytes(variant.name) < 5e6, variant
        assert variant.build_s > 0
    assert not list(f16.path.parent.glob("*.partial")), "a finished build leaves no partial file"
    assert q8.fallback_tensors == 0  # Q8_0 blocks are 32 wide: 576-wide rows need no fallback
    ppl_f16, ppl_q8, ppl_shipped = perplexity(f16.path), perplexity(q8.path), perplexity(embedded_gguf_path())
    # F16 holds exactly the shipped Q4_1 weights, so it scores what the shipped file scores; Q8_0 stays close.
    assert ppl_f16 == pytest.approx(ppl_shipped, rel=0.02)
    assert 1 < ppl_f16 < 100 and ppl_q8 == pytest.approx(ppl_f16, rel=0.03)


# real llama.cpp / transformers on the embedded model: seconds each
def test_perplexity_refuses_a_text_longer_than_its_window(variants):
    with pytest.raises(ValueError, match="shorten the text or raise n_ctx"):
        perplexity(variants[1].path, text="word " * 400, n_ctx=64)


def test_cli_names_the_variants_on_a_typo():
    result = subprocess.run([sys.executable, "-m", "spark_labs.cli", "build", "quantize", "--variants", "Q3"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "invalid choice: 'Q3'" in result.stderr and "Q4_K_M" in result.stderr


@pytest.fixture(scope="module")
def model_and_tokenizer():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = prepare_embedded_model()
    # float32: CPUs without bf16 matrix units run bf16 many times slower.
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval(), AutoTokenizer.from_pretrained(path)


# real llama.cpp / transformers on the embedded model: seconds each
def test_static_cache_decoder_matches_generate_and_refuses_overlong_requests(model_and_tokenizer):
    import torch

    from spark_labs.variants.compiled import CacheTooShortError, StaticCacheDecoder

    model, tokenizer = model_and_tokenizer
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                        add_generation_prompt=True, return_dict=True)["input_ids"]
    decoder = StaticCacheDecoder(model, max_cache_len=64, compile=False)
    new = decoder.generate(list(ids), 8, eos_token_id=tokenizer.eos_token_id)
    reference = model.generate(torch.tensor([list(ids)]), max_new_tokens=8, do_sample=False)[0, len(ids):]
    assert new == reference.tolist()[: len(new)] and "Paris" in tokenizer.decode(new)
    assert decoder.generate(list(ids), 8, eos_token_id=tokenizer.eos_token_id) == new, "the cache is reset"
    math = StaticCacheDecoder(model, max_cache_len=64, compile=False, attention="math")
    assert math.generate(list(ids), 8, eos_token_id=tokenizer.eos_token_id) == new  # float32: the same tokens
    with pytest.raises(ValueError, match="attention='flash'"):
        StaticCacheDecoder(model, max_cache_len=64, compile=False, attention="flash")
    timing = decoder.timed(list(ids), 6)
    assert timing.new_tokens == 6 and timing.prefill_s > 0 and timing.decode_tok_s > 0
    with pytest.raises(CacheTooShortError, match="max_cache_len=64"):
        decoder.generate(list(ids), 64)


# real llama.cpp / transformers on the embedded model: seconds each
def test_gateway_backend_streams_through_the_decoder(model_and_tokenizer):
    """The backend picks the decoder only on CUDA; here it is given one (eager, CPU) by hand, and must stream
    the same greedy answer through it as through generate."""
    from spark_labs.serve.backends import GenerationRequest, Outcome, TransformersBackend
    from spark_labs.variants.compiled import StaticCacheDecoder

    backend = TransformersBackend(str(prepare_embedded_model()), "smol", device="cpu")
    assert backend.decoder is None  # CPU: eager generate unless told otherwise

    async def ask() -> tuple[str, int]:
        outcome = Outcome()
        request = GenerationRequest(kind="chat", model="smol", max_tokens=8, temperature=0.0,
                                    messages=[{"role": "user", "content": "What is the capital of France?"}])
        text = "".join([piece.text async for piece in backend.stream(request, outcome)])
        return text, outcome.usage.completion_tokens

    eager = asyncio.run(ask())
    backend.decoder = StaticCacheDecoder(backend.model, max_cache_len=128, compile=False)
    assert asyncio.run(ask()) == eager and "Paris" in eager[0]


# real transformers + bitsandbytes + llama.cpp on the embedded model: seconds each
def test_nf4_weights_shrink_and_are_scored_like_the_gguf_variants(variants):
    from llama_cpp import Llama
    from transformers import AutoTokenizer

    from spark_labs.variants.measure import time_in_process
    from spark_labs.variants.quality import REFERENCE_TEXT, transformers_perplexity
    from spark_labs.variants.weight_only import load_variant

    path = prepare_embedded_model()
    tokenizer = AutoTokenizer.from_pretrained(path)
    vocab = Llama(model_path=str(variants[0].path), vocab_only=True, verbose=False)
    # Same token ids on both engines (neither adds a BOS for this model): the two perplexities are comparable.
    assert vocab.tokenize(REFERENCE_TEXT.encode(), add_bos=True) == tokenizer(REFERENCE_TEXT)["input_ids"]
    bf16, nf4 = load_variant(path, "bf16"), load_variant(path, "NF4")
    assert bf16.weight_bytes == pytest.approx(sizing.weight_bytes(sizing.SMOLLM2_135M, "bf16"), rel=0.01)
    # Linear weights at 4.5 bits; the tied embedding (49152 x 576) stays bf16.
    embedding = 49152 * 576
    expected = 2 * embedding + (sizing.param_count(sizing.SMOLLM2_135M) - embedding) * 4.5 / 8
    assert nf4.weight_bytes == pytest.approx(expected, rel=0.02)
    ppl_bf16, ppl_nf4 = transformers_perplexity(bf16.model, tokenizer), transformers_perplexity(nf4.model, tokenizer)
    # bf16 holds the shipped Q4_1 weights, as the F16 GGUF does: the two engines score them alike.
    assert ppl_bf16 == pytest.approx(perplexity(variants[0].path), rel=0.03)
    assert ppl_bf16 < ppl_nf4 < 1.5 * ppl_bf16
    speed = time_in_process(nf4.model, tokenizer, pp=16, tg=4, repeats=1)
    assert speed["prefill_tok_s"] > 0 and speed["decode_tok_s"] > 0


# loads the embedded model
def test_static_cache_that_does_not_fit_stops_before_allocating(model_and_tokenizer):
    from spark_labs.variants.compiled import StaticCacheDecoder

    model, _ = model_and_tokenizer
    with pytest.raises(InsufficientMemoryError, match=r"static KV cache of 1000000000 positions.*"
                                                      r"Nothing was allocated"):
        StaticCacheDecoder(model, max_cache_len=10**9, compile=False)
    with pytest.raises(InsufficientMemoryError, match="smaller max_cache_len"):
        StaticCacheDecoder(model, max_cache_len=1024, compile=False, free_memory=1e6)
