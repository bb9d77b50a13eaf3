"""The six skill areas of the original module's self-check as questions with immediate feedback.

Every question can be answered in a widget (learners) or with ``quiz.answer(id, value)`` (headless runs,
grading). Numeric answers are checked against the library's own calculator, not a hard-coded constant.
A wrong answer gets "try again" first; the explanation (which gives the answer away) comes with a right
answer, after a second wrong try, or on request (``quiz.reveal(id)``, or the widget's button).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ..sizing import LLAMA_3_1_8B, kv_bytes_per_token, kv_cache_bytes


@dataclass(frozen=True)
class Question:
    id: str
    skill: str
    prompt: str
    check: Callable[[object], bool]
    explain: str  # why the right answer is right: shown once answered right, after two misses, or on request
    options: tuple[str, ...] = ()  # multiple choice when present; free text otherwise
    review: str = ""  # where to go if this one is missed
    expected: float | None = None  # numeric answers: the right number
    mistakes: tuple[tuple[float, str], ...] = ()  # …and the slips: a wrong value ≈ factor × expected means why


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

# The usual slips on the two KV questions, as factors of the right answer.
KV_TOKEN_MISTAKES = ((1024, "that is bytes: the question asks for KiB (÷ 1024)"),
                     (0.5, "only K or only V: every token stores both (× 2)"),
                     (4, "that counts all 32 attention heads: only the 8 KV heads store K and V"),
                     (2, "4 bytes per value is fp32: bf16 takes 2"))
KV_USERS_MISTAKES = ((1024, "that is MiB: the question asks for GiB (÷ 1024)"),
                     (2**30 / 1e9, "that is GB (10⁹ bytes): the question asks for GiB (2³⁰ bytes)"),
                     (0.25, "one user's cache: 4 users each hold their own"),
                     (2**30, "that is bytes: the question asks for GiB"))


def diagnose(question: Question, value: object) -> str:
    """What a wrong numeric answer most likely got wrong, or "" when it matches no known slip."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return f"{value!r} is not a number" if question.mistakes else ""
    expected = question.expected
    for factor, why in question.mistakes:
        if expected and abs(number - factor * expected) <= 0.02 * factor * expected:
            return why
    return ""

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
             "port 8000 (HOST:CONTAINER).",
             lambda v: re.fullmatch(r"\s*((-p|--publish)[ =])?8000:8000\s*", str(v)) is not None,
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
             review="Module 3.2 and attention basics", expected=KV_KIB, mistakes=KV_TOKEN_MISTAKES),
    Question("kv_4x8k", "KV cache", "…and for 4 concurrent users with 8,192-token contexts, how many GiB?",
             _number(KV_GIB_4x8K), "4 × 8,192 × 128 KiB = 4 GiB: the cache grows with batch × context.",
             review="Module 3.2 and attention basics", expected=KV_GIB_4x8K,
             mistakes=KV_USERS_MISTAKES),
    Question("enforce_eager", "DGX Spark / ARM64", "What does vLLM's --enforce-eager change, and why did Spark "
             "guides use it?", _choice(_EAGER, 1), "Eager mode skips CUDA-graph capture; on CPU it also skips "
             "the long torch.compile warm-up.", _EAGER, "Module 1.1: DGX Spark platform"),
)


REVEAL_AFTER_MISSES = 2  # one wrong try is a chance to think again; the second shows the answer


@dataclass
class Quiz:
    questions: tuple[Question, ...] = QUESTIONS
    answers: dict[str, Feedback] = field(default_factory=dict)
    misses: dict[str, int] = field(default_factory=dict)
    given: dict[str, object] = field(default_factory=dict)  # the last value answered per key

    @property
    def keys(self) -> list[str]:
        """The answer keys ``submit`` expects, in question order."""
        return [q.id for q in self.questions]

    def question(self, qid: str) -> Question:
        for q in self.questions:
            if q.id == qid:
                return q
        raise ValueError(f"the quiz has no question {qid!r}: use one of the keys {', '.join(self.keys)}")

    def answer(self, qid: str, value: object) -> Feedback:
        q = self.question(qid)
        self.given[qid] = value
        correct = bool(q.check(value))
        if correct:
            message = "right. " + q.explain
        else:
            self.misses[qid] = self.misses.get(qid, 0) + 1
            slip = diagnose(q, value)
            message = (f"not quite{f' ({slip})' if slip else ''}. The answer: {q.explain}"
                       if self.misses[qid] >= REVEAL_AFTER_MISSES else
                       f"not quite{f': {slip}' if slip else ''} — try again (the answer shows after a second "
                       f"wrong try, or with quiz.reveal({qid!r})).")
        feedback = Feedback(q.id, correct, message)
        self.answers[qid] = feedback
        return feedback

    def reveal(self, qid: str) -> str:
        """The explanation of one question, on request (the question then counts as missed until answered)."""
        q = self.question(qid)
        return f"{q.id}: {q.explain}"

    def submit(self, answers: dict[str, object]) -> list[Feedback]:
        return [self.answer(qid, value) for qid, value in answers.items()]

    def summary(self) -> str:
        """One line per question (✅ right, ❌ wrong, · not answered): a plain-text record of the quiz that a
        saved notebook shows even where the widget cannot be redrawn."""
        marks = []
        for q in self.questions:
            feedback = self.answers.get(q.id)
            mark = "·" if feedback is None else ("✅" if feedback.correct else "❌")
            marks.append(f"{mark} {q.id} ({q.skill})" + ("" if feedback else ": not answered"))
        return "\n".join(marks)

    @property
    def wrong(self) -> list[str]:
        """One line per wrong answer: the key and what it most likely got wrong (for the checkpoint's reason)."""
        lines = []
        for q in self.questions:
            feedback = self.answers.get(q.id)
            if feedback is not None and not feedback.correct:
                slip = diagnose(q, self.given.get(q.id))
                lines.append(f"{q.id}" + (f" ({slip})" if slip else ""))
        return lines

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
                control = w.Text(placeholder="your answer, then Enter", continuous_update=False)
            show = w.Button(description="show the answer", layout={"width": "auto"})

            def on_change(change, q=q, output=output):
                if change["name"] != "value" or change["new"] in (None, ""):
                    return
                output.clear_output()
                with output:
                    print(self.answer(q.id, change["new"]))

            def on_show(_button, q=q, output=output):
                output.clear_output()
                with output:
                    print(self.reveal(q.id))

            control.observe(on_change)
            show.on_click(on_show)
            rows.append(w.VBox([w.HTML(f"<b>{q.skill}</b> (<code>{q.id}</code>): {q.prompt}"), control, show, output]))
        return w.VBox(rows)


SKILLS_QUIZ = Quiz  # a fresh Quiz() per learner; the name documents where lab 00's questions live


def readiness(environment_ok: bool, handson_ok: bool, missed_skills: list[str]) -> str:
    """Route the learner the way the original module's self-check does."""
    gaps = len(missed_skills) + (0 if handson_ok else 1)
    if environment_ok and gaps == 0:
        return "Ready: every prerequisite is met — start lab 01 (engine benchmark)."
    if not environment_ok:
        return "Fix the ❌ rows of the environment table first (each row says how), then re-run this notebook."
    if gaps <= 2:
        topics = ", ".join(missed_skills + ([] if handson_ok else ["4-bit model loading"]))
        return f"Almost ready: about 2–3 hours of review on {topics}, then start lab 01."
    return "Several gaps: complete Modules 3.1–3.2 (quantization, model loading) before this module."
