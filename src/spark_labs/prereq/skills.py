"""The six skill areas of the seed self-check as questions with immediate feedback.

Every question can be answered in a widget (learners) or with ``quiz.answer(id, value)`` (headless runs,
grading). Numeric answers are checked against the library's own calculator, not a hard-coded constant.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ..calc import LLAMA_3_1_8B, kv_bytes_per_token, kv_cache_bytes


@dataclass(frozen=True)
class Question:
    id: str
    skill: str
    prompt: str
    check: Callable[[object], bool]
    explain: str  # shown after any answer: why the right answer is right
    options: tuple[str, ...] = ()  # multiple choice when present; free text otherwise
    review: str = ""  # where to go if this one is missed


@dataclass
class Feedback:
    question: str
    correct: bool
    message: str

    def __str__(self) -> str:
        return f"{'✅' if self.correct else '❌'} {self.question}: {self.message}"


def _choice(options: tuple[str, ...], right: int) -> Callable[[object], bool]:
    return lambda value: value in (right, options[right])


def _number(expected: float, tolerance: float = 0.02) -> Callable[[object], bool]:
    def check(value: object) -> bool:
        try:
            return abs(float(value) - expected) <= tolerance * abs(expected)
        except (TypeError, ValueError):
            return False

    return check


KV_KIB = kv_bytes_per_token(LLAMA_3_1_8B) / 1024
KV_GIB_4x8K = kv_cache_bytes(LLAMA_3_1_8B, batch=4, context=8192) / 2**30

_SSE = ("a binary socket protocol for GPUs", "the server keeps one HTTP response open and sends events "
        "(here: tokens) as they are produced", "a way to compress JSON", "a Docker network mode")
_LATENCY = ("latency is how long one request takes; throughput is how much work per second the server "
            "completes across all requests", "they are the same thing measured in different units",
            "throughput is the time to first token", "latency only matters for batch jobs")
_PREFILL = ("decode processes the prompt; prefill generates tokens", "prefill processes the whole prompt in "
            "parallel and is compute-bound; decode makes one token per step and is memory-bandwidth-bound",
            "both are compute-bound", "prefill only happens on CPUs")
_EAGER = ("it enables CUDA graphs for speed", "it disables CUDA-graph capture, which some aarch64 builds "
          "could not do reliably; current NGC images run graphs, so it is now a fallback",
          "it turns on bfloat16", "it is needed on every x86 GPU")

QUESTIONS: tuple[Question, ...] = (
    Question("rest_post", "REST APIs", "Which HTTP method sends an LLM inference request (a JSON body)?",
             lambda v: str(v).strip().upper() == "POST", "POST carries a JSON payload (model, messages, "
             "parameters) to the server; GET only reads.", review="the labs' REST examples"),
    Question("sse", "REST APIs", "What is streaming with Server-Sent Events (SSE)?", _choice(_SSE, 1),
             "SSE keeps one HTTP response open and sends `data:` events as tokens are generated.", _SSE,
             "the labs' REST examples"),
    Question("docker_port", "Docker", "Write the docker run flag that exposes container port 8000 on host "
             "port 8000.", lambda v: re.fullmatch(r"\s*(-p|--publish)[ =]8000:8000\s*", str(v)) is not None,
             "`-p HOST:CONTAINER`, e.g. `-p 8000:8000` (vLLM), `-p 8888:8888` (Jupyter), `-p 11434:11434` (Ollama).",
             review="Module 1.1: DGX Spark platform"),
    Question("latency_throughput", "Benchmarking", "Latency vs throughput?", _choice(_LATENCY, 0),
             "Batching raises throughput and can raise each request's latency: that trade-off is lab 01's topic.",
             _LATENCY, "lab 01 teaches it"),
    Question("prefill_decode", "Benchmarking", "Prefill vs decode?", _choice(_PREFILL, 1),
             "TTFT is dominated by prefill (and queueing); tokens/s after that by decode.", _PREFILL,
             "lab 01 teaches it"),
    Question("kv_per_token", "KV cache", "Llama-3.1-8B in bf16 (32 layers, 8 KV heads, head_dim 128): how many "
             "KiB of KV cache does ONE token take?", _number(KV_KIB),
             "2 (K and V) × 32 layers × 8 heads × 128 dims × 2 bytes = 131,072 bytes = 128 KiB.",
             review="Module 3.2 and attention basics"),
    Question("kv_4x8k", "KV cache", "…and for 4 concurrent users with 8,192-token contexts, how many GiB?",
             _number(KV_GIB_4x8K), "4 × 8,192 × 128 KiB = 4 GiB: the cache grows with batch × context.",
             review="Module 3.2 and attention basics"),
    Question("enforce_eager", "DGX Spark / ARM64", "What does vLLM's --enforce-eager change, and why did Spark "
             "guides use it?", _choice(_EAGER, 1), "Eager mode skips CUDA-graph capture; on CPU it also skips "
             "the long torch.compile warm-up.", _EAGER, "Module 1.1: DGX Spark platform"),
)


@dataclass
class Quiz:
    questions: tuple[Question, ...] = QUESTIONS
    answers: dict[str, Feedback] = field(default_factory=dict)

    def question(self, qid: str) -> Question:
        for q in self.questions:
            if q.id == qid:
                return q
        raise KeyError(f"no question {qid!r}; ids: {', '.join(q.id for q in self.questions)}")

    def answer(self, qid: str, value: object) -> Feedback:
        q = self.question(qid)
        correct = bool(q.check(value))
        feedback = Feedback(q.id, correct, ("right. " if correct else "not quite. ") + q.explain)
        self.answers[qid] = feedback
        return feedback

    def submit(self, answers: dict[str, object]) -> list[Feedback]:
        return [self.answer(qid, value) for qid, value in answers.items()]

    @property
    def missed_skills(self) -> list[str]:
        skills = []
        for q in self.questions:
            if not (q.id in self.answers and self.answers[q.id].correct) and q.skill not in skills:
                skills.append(q.skill)
        return skills

    def widget(self):
        """An ipywidgets form: each question checks itself as soon as it is answered."""
        import ipywidgets as w

        rows = []
        for q in self.questions:
            output = w.Output()
            if q.options:
                control = w.RadioButtons(options=list(q.options), value=None, layout={"width": "auto"})
            else:
                control = w.Text(placeholder="your answer, then Enter")

            def on_change(change, q=q, output=output):
                if change["name"] != "value" or change["new"] in (None, ""):
                    return
                output.clear_output()
                with output:
                    print(self.answer(q.id, change["new"]))

            control.observe(on_change)
            rows.append(w.VBox([w.HTML(f"<b>{q.skill}</b>: {q.prompt}"), control, output]))
        return w.VBox(rows)


SKILLS_QUIZ = Quiz  # a fresh Quiz() per learner; the name documents where lab 00's questions live


def readiness(environment_ok: bool, handson_ok: bool, missed_skills: list[str]) -> str:
    """Route the learner the way the seed self-check does."""
    gaps = len(missed_skills) + (0 if handson_ok else 1)
    if environment_ok and gaps == 0:
        return "Ready: every prerequisite is met — start lab 01 (engine benchmark)."
    if not environment_ok:
        return "Fix the ❌ rows of the environment table first (each row says how), then re-run this notebook."
    if gaps <= 2:
        topics = ", ".join(missed_skills + ([] if handson_ok else ["4-bit model loading"]))
        return f"Almost ready: about 2–3 hours of review on {topics}, then start lab 01."
    return "Several gaps: complete Modules 3.1–3.2 (quantization, model loading) before this module."
