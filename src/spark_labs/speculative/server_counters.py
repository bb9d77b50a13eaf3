"""Acceptance as a server counts it: the spec-decode counters on an engine's Prometheus ``/metrics``.

Which series an engine keeps is in the registry (``EngineSpec.spec_decode_counters``; vLLM has them). Two
scrapes, before and after a run, differ by exactly that run's drafts, so the difference gives the run's
acceptance rate, tokens per verification step and per-position acceptance, in the same terms as our own
loop's :class:`~spark_labs.speculative.accounting.Acceptance`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from ..engines.engine_spec import EngineSpec


@dataclass
class ServerAcceptance:
    drafts: float = 0.0  # verification steps that carried a draft
    draft_tokens: float = 0.0
    accepted: float = 0.0
    accepted_per_position: list[float] = field(default_factory=list)

    @classmethod
    def parse(cls, metrics_text: str, spec: EngineSpec) -> ServerAcceptance:
        names = spec.spec_decode_counters
        if not names:
            raise ValueError(f"{spec.display_name} reports no spec-decode counters on /metrics; "
                             "count acceptance in your own loop instead (spark_labs.speculative.runner)")
        wanted = {name: key for key, name in names.items()}
        found = cls()
        per_position: dict[int, float] = {}
        for family in text_string_to_metric_families(metrics_text):
            key = wanted.get(family.name)
            if key is None:
                continue
            for sample in family.samples:
                if not sample.name.endswith("_total"):
                    continue
                if key == "accepted_per_position":
                    position = int(sample.labels["position"])
                    per_position[position] = per_position.get(position, 0.0) + sample.value
                else:
                    setattr(found, key, getattr(found, key) + sample.value)
        found.accepted_per_position = [per_position.get(i, 0.0) for i in range(max(per_position, default=-1) + 1)]
        return found

    def __sub__(self, before: ServerAcceptance) -> ServerAcceptance:
        earlier = before.accepted_per_position + [0.0] * len(self.accepted_per_position)
        return ServerAcceptance(self.drafts - before.drafts, self.draft_tokens - before.draft_tokens,
                                self.accepted - before.accepted,
                                [a - b for a, b in zip(self.accepted_per_position, earlier)])

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.draft_tokens if self.draft_tokens else 0.0

    @property
    def tokens_per_step(self) -> float:
        """Tokens per drafted verification step: the accepted ones plus the target's own."""
        return (self.accepted + self.drafts) / self.drafts if self.drafts else 0.0

    @property
    def per_position_rate(self) -> list[float]:
        return [a / self.drafts if self.drafts else 0.0 for a in self.accepted_per_position]

    @property
    def alpha(self) -> float:
        """Accepted / tested draft tokens, as :attr:`Acceptance.alpha`: a step whose last position was accepted
        had no rejection; every other drafted step had exactly one."""
        if not self.accepted_per_position:
            return 0.0
        rejections = self.drafts - self.accepted_per_position[-1]
        tested = self.accepted + rejections
        return self.accepted / tested if tested else 0.0


def server_acceptance_by_workload(handle, workloads, max_tokens: int = 48) -> list[dict]:
    """One greedy chat request per workload to a running engine, with the acceptance its counters saw.

    ``handle`` is an :class:`~spark_labs.engines.launcher.EngineHandle` started with speculation on.
    Requests go one at a time so each scrape difference belongs to one workload.
    """
    import httpx

    from .workloads import workload_prompt

    def scrape() -> ServerAcceptance:
        return ServerAcceptance.parse(httpx.get(handle.metrics_url, timeout=30).text, handle.spec)

    rows = []
    for workload in workloads:
        before = scrape()
        reply = httpx.post(f"{handle.base_url}/chat/completions", timeout=600, json={
            "model": handle.served_name, "max_tokens": max_tokens, "temperature": 0,
            "messages": [{"role": "user", "content": workload_prompt(workload)}]})
        reply.raise_for_status()
        run = scrape() - before
        rows.append({"workload": workload, "drafts": int(run.drafts), "draft_tokens": int(run.draft_tokens),
                     "accepted": int(run.accepted), "alpha": run.alpha, "acceptance_rate": run.acceptance_rate,
                     "tokens_per_step": run.tokens_per_step,
                     "per_position": [round(r, 2) for r in run.per_position_rate]})
    return rows
