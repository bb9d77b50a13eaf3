"""Skill 1, hands-on: load the profile's model in 4-bit NF4, generate, and report memory."""

from __future__ import annotations

from dataclasses import dataclass

from ..variants.weight_only import KNOWN_HARMLESS_WARNING, hide_known_bitsandbytes_warning, nf4_config

__all__ = ["KNOWN_HARMLESS_WARNING", "QuantizedRun", "handson_problems", "hide_known_bitsandbytes_warning",
           "load_4bit_and_generate"]


@dataclass
class QuantizedRun:
    text: str
    footprint_bytes: int
    bf16_footprint_bytes: int
    linear4bit_layers: int

    @property
    def ratio(self) -> float:
        return self.footprint_bytes / self.bf16_footprint_bytes


def count_4bit_layers(model) -> int:
    import bitsandbytes as bnb

    return sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())


def load_4bit_and_generate(model_path: str, prompt: str = "What is the capital of France?",
                           max_new_tokens: int = 16) -> QuantizedRun:
    """The reference answer to skill 1 (the notebook's exercise writes this itself)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = nf4_config()
    device_map = "auto" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(model_path, quantization_config=config, device_map=device_map)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    inputs = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True).to(model.device)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    text = tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    return QuantizedRun(text, model.get_memory_footprint(), bf16_footprint(model_path), count_4bit_layers(model))


def handson_problems(model, answer: str, footprint: int, bf16: int, question: str) -> list[str]:
    """What is wrong with Exercise 00.1's model and answer, each in words that name the fix; [] when right."""
    problems = []
    settings = getattr(model.config, "quantization_config", None)
    settings = settings.to_dict() if hasattr(settings, "to_dict") else dict(settings or {})
    if count_4bit_layers(model) == 0:
        problems.append("no layer is 4-bit: give from_pretrained a BitsAndBytesConfig with load_in_4bit=True "
                        "as quantization_config")
    else:
        kind = str(settings.get("bnb_4bit_quant_type", "fp4"))
        if kind != "nf4":
            problems.append(f"the weights are {kind.upper()}, not NF4: set bnb_4bit_quant_type='nf4' "
                            f"(bitsandbytes' default is fp4)")
        compute = str(settings.get("bnb_4bit_compute_dtype", "float32")).replace("torch.", "")
        if compute != "bfloat16":
            problems.append(f"the 4-bit layers compute in {compute}, not bfloat16: set "
                            f"bnb_4bit_compute_dtype=torch.bfloat16")
    if footprint >= 0.6 * bf16:
        problems.append(f"the footprint is {footprint / bf16:.0%} of bf16 (a 4-bit model is below 60%)")
    if not isinstance(answer, str) or not answer.strip():
        problems.append("the answer is empty: decode the generated tokens to text")
    elif question.lower() in answer.lower():
        problems.append("the answer repeats the prompt: decode only the new tokens, those after the prompt's length")
    return problems


def load_quantized_like(model_path: str, quantization_config: dict | None):
    """The grader's copy of a learner's model: loaded here with the quantization settings the learner's model
    carried (none: a plain load), so what is checked is a real model, never an object that reports numbers."""
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    kwargs = {"device_map": "auto" if torch.cuda.is_available() else "cpu"}
    if quantization_config:
        kwargs["quantization_config"] = BitsAndBytesConfig.from_dict(dict(quantization_config))
    return AutoModelForCausalLM.from_pretrained(model_path, **kwargs)


def bf16_footprint(model_path: str) -> int:
    """Bytes the same model takes in bf16, from its parameter count (no second load needed)."""
    import json
    from pathlib import Path

    from ..sizing import ModelShape, param_count

    config_file = Path(model_path) / "config.json"
    if config_file.is_file():
        shape = ModelShape.from_config(json.loads(config_file.read_text()))
    else:
        from transformers import AutoConfig

        shape = ModelShape.from_config(AutoConfig.from_pretrained(model_path))
    return param_count(shape) * 2
