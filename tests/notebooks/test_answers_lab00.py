"""Lab 00's checkpoints against the answers learners type: the reference's pass, each wrong one fails and its
message names the mistake. Lab 00 runs once (a rehearsal: the grader's two kernels, real model, real quiz),
then every answer goes through the real checkpoint cell on that run's data."""

from __future__ import annotations

import pytest
from answers_support import (
    assert_fails_naming,
    test_the_reference_answers_pass_every_checkpoint,  # noqa: F401 (collected here)
    test_the_run_matches_the_recording,  # noqa: F401
)

SETUP = """quantization = BitsAndBytesConfig({config})
model = AutoModelForCausalLM.from_pretrained(model_path, quantization_config=quantization, device_map="cpu")
inputs = tokenizer.apply_chat_template(question, add_generation_prompt=True, return_tensors="pt",
                                       return_dict=True).to(model.device)
with torch.no_grad():
    output = model.generate(**inputs, max_new_tokens=16, do_sample=False)
answer = tokenizer.decode(output[0, {start}:], skip_special_tokens=True)"""
NF4 = 'load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16'
NEW_TOKENS = 'inputs["input_ids"].shape[1]'

WRONG_00_1 = {
    "no quantization config": ('model = AutoModelForCausalLM.from_pretrained(model_path, device_map="cpu")\n'
                               'answer = "Paris"', "no layer is 4-bit"),
    "fp4, the library's default type": (SETUP.format(config='load_in_4bit=True, bnb_4bit_compute_dtype=torch.bfloat16',
                                                     start=NEW_TOKENS), "not NF4"),
    "compute dtype left at float32": (SETUP.format(config='load_in_4bit=True, bnb_4bit_quant_type="nf4"',
                                                   start=NEW_TOKENS), "compute in float32"),
    "decoded the prompt too": (SETUP.format(config=NF4, start="0"), "repeats the prompt"),
    "token ids instead of text": (SETUP.format(config=NF4, start=NEW_TOKENS).replace(
        "answer = tokenizer.decode(output[0, inputs[\"input_ids\"].shape[1]:], skip_special_tokens=True)",
        "answer = output[0]"), "cannot be graded"),
}

RIGHT_ANSWERS = {"rest_post": "POST", "sse": 1, "docker_port": "-p 8000:8000", "latency_throughput": 0,
                 "prefill_decode": 1, "kv_per_token": 128, "kv_4x8k": 4, "enforce_eager": 1}
WRONG_00_2 = {
    "KV per token in bytes": ({"kv_per_token": 131072}, "that is bytes: the question asks for KiB"),
    "K only": ({"kv_per_token": 64}, "only K or only V"),
    "all 32 query heads": ({"kv_per_token": 512}, "only the 8 KV heads"),
    "GB instead of GiB": ({"kv_4x8k": 4.295}, "GB (10⁹ bytes)"),
    "one user": ({"kv_4x8k": 1}, "one user's cache"),
    "ports the wrong way round": ({"docker_port": "-p 8000"}, "docker_port"),
}


def _answers(changes: dict) -> str:
    return f"answers = {({**RIGHT_ANSWERS, **changes})!r}"


def test_the_right_answer_typed_by_hand_passes(lab):
    assert lab.answer("00.1", SETUP.format(config=NF4, start=NEW_TOKENS)).passed
    assert lab.answer("00.2", _answers({}), also=("quiz.submit",)).passed


@pytest.mark.parametrize("mistake", WRONG_00_1)
def test_a_wrong_model_fails_naming_the_mistake(lab, mistake):
    assert_fails_naming(lab, "00.1", *WRONG_00_1[mistake])


@pytest.mark.parametrize("mistake", WRONG_00_2)
def test_a_wrong_quiz_answer_fails_naming_the_mistake(lab, mistake):
    changes, says = WRONG_00_2[mistake]
    assert_fails_naming(lab, "00.2", _answers(changes), says, also=("quiz.submit",))
