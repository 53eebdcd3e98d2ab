"""One approach's run in the comparison (``bench.compare``): its figures and its verdict, as
the report (:mod:`bench.compare_report`) and the targets (:mod:`bench.compare_targets`) read
them."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.check import Verdict


@dataclass
class Result:
    server: str
    orders: int
    approach: str
    qualifying: int
    status: str = "ok"  # ok | error | not available | n/a
    error: str | None = None
    seconds: float = 0.0
    statements: int = 0
    direct: int = 0
    commits: int = 0
    capped_at: float | None = None
    rss_mb: float = 0.0
    verdict: Verdict | None = None
    #: the seconds of every run when the approach ran more than once (``--repeat``); the other
    #: figures are those of the median run
    runs: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.verdict is not None and self.verdict.ok

    @property
    def complete(self) -> bool:
        return self.ok and self.capped_at is None

    @property
    def written(self) -> int:
        return self.verdict.written if self.verdict else 0

    @property
    def rate(self) -> float:
        return self.written / self.seconds if self.seconds else 0.0

    def per_k(self, count: int) -> float:
        return count * 1000 / max(self.written, 1)

    def cells(self) -> list[str]:
        head = [self.server, f"{self.orders:,}", self.approach]
        if self.status != "ok":
            error = (self.error or "").replace("|", "/")
            reason = f" ({error})" if error and self.status == "error" else ""
            return [*head, "", "", "", "", "", "", f"{self.status}{reason}"]
        assert self.verdict is not None
        seconds = f"{self.seconds:.2f}"
        if len(self.runs) > 1:
            seconds += f" ({min(self.runs):.2f}–{max(self.runs):.2f}, {len(self.runs)} runs)"
        if self.capped_at is not None:
            seconds += f" (capped at {self.capped_at:.0f} s)"
        statements = f"{self.per_k(self.statements):,.1f}"
        if self.direct:
            statements += f" (+{self.per_k(self.direct):,.1f} direct)"
        return [
            *head,
            seconds,
            f"{self.written:,} of {self.qualifying:,}",
            f"{self.rate:,.0f}",
            statements,
            f"{self.per_k(self.commits):,.1f}",
            f"{self.rss_mb:,.0f}",
            self.verdict.text,
        ]

    def line(self) -> str:
        return "| " + " | ".join(self.cells()) + " |"
