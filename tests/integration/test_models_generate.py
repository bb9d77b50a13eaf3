"""The embedded model: found without importing its package, exported once, and it answers correctly."""

from __future__ import annotations

from spark_labs.models import embedded as models


def test_exported_model_answers_a_factual_question():
    """Greedy generation from the exported bf16 safetensors copy names the right capital."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = models.prepare_embedded_model()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=16, do_sample=False)
    answer = tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer, answer
