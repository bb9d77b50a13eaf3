"""What one benchmark request leaves behind: every chunk's arrival time, the text, and token counts
from every source we have. Metrics are computed from these records and nothing else, so a record
saved to JSON can be re-analysed later without re-running the engine.

All times are ``time.perf_counter_ns()`` readings: monotonic, nanosecond resolution, and on Linux the
same clock in every process on the machine (the calibration server stamps chunks with it too).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Chunk:
    t_ns: int  # when the chunk's bytes were handed to us
    text: str
    tokens: int | None = None  # tokens this chunk carries, when the server says so
    # A reasoning model's thinking (vLLM's reasoning parser sends it as `reasoning_content` deltas),
    # kept apart from the answer so the two can be counted and timed separately.
    reasoning: bool = False


@dataclass
class TokenCounts:
    """One quantity from three sources, kept side by side so disagreements stay visible."""

    requested: int | None = None  # what we asked for (max_tokens) or built (synthetic prompt length)
    server: int | None = None  # the engine's usage / eval_count / timings record
    client: int | None = None  # our tokenizer over the whole text, special tokens off

    @property
    def best(self) -> int | None:
        # The server counted the tokens it generated; our tokenizer re-derives them from text.
        return self.server if self.server is not None else self.client

    def disagreement(self, tolerance: float = 0.05) -> str | None:
        if self.server is None or self.client is None:
            return None
        gap = abs(self.server - self.client)
        if gap > max(1, tolerance * max(self.server, self.client)):
            return f"server counted {self.server} tokens, client tokenizer {self.client}"
        return None


@dataclass
class RequestRecord:
    request_id: str
    engine: str
    workload: str
    scheduled_ns: int  # when the load generator meant to send it (open loop) or sent it (closed loop)
    sent_ns: int = 0  # when the HTTP request actually left
    end_ns: int = 0
    chunks: list[Chunk] = field(default_factory=list)
    prompt_tokens: TokenCounts = field(default_factory=TokenCounts)
    output_tokens: TokenCounts = field(default_factory=TokenCounts)
    status: int | None = None  # HTTP status
    error: str | None = None  # set when the request failed, before or during the stream
    server_timing: dict[str, float] = field(default_factory=dict)  # seconds, as the server reported them
    forced_length: bool = False  # we asked the engine to ignore EOS / honour min_tokens
    prompt_text: str = ""
    reasoning_tokens: int | None = None  # the server's count of thinking tokens (usage.completion_tokens_details)
    stream: int | None = None  # closed loop: which of the N streams sent it (None for open-loop arrivals)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        """Everything generated, thinking included: what the server's completion token count covers."""
        return "".join(c.text for c in self.chunks)

    @property
    def answer_text(self) -> str:
        return "".join(c.text for c in self.chunks if not c.reasoning)

    @property
    def reasoning_text(self) -> str:
        return "".join(c.text for c in self.chunks if c.reasoning)

    @property
    def content_chunks(self) -> list[Chunk]:
        return [c for c in self.chunks if c.text or c.tokens]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RequestRecord:
        data = dict(data)
        data["chunks"] = [Chunk(**c) for c in data.get("chunks", [])]
        data["prompt_tokens"] = TokenCounts(**data.get("prompt_tokens", {}))
        data["output_tokens"] = TokenCounts(**data.get("output_tokens", {}))
        return cls(**data)
