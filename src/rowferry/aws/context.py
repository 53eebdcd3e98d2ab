"""What the handler uses of Lambda's context object, and a stand-in for tests and the simulator.

Lambda's own context counts down from the function's timeout; :class:`FakeContext` does the same
from an absolute deadline (``time.time()`` seconds), so that a simulator can start the clock
when it starts the process, as Lambda does when it starts an invocation.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Protocol


class LambdaContext(Protocol):
    """The part of ``awslambdaric``'s context object the handler reads."""

    function_name: str
    aws_request_id: str

    def get_remaining_time_in_millis(self) -> int: ...


@dataclass
class FakeContext:
    """A Lambda context whose remaining time runs out at ``deadline`` (epoch seconds)."""

    deadline: float
    memory_limit_in_mb: int = 1024
    function_name: str = "rowferry-simulated"
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/rowferry-simulated"
    log_stream_name: str = "simulated"

    @classmethod
    def with_timeout(cls, seconds: float, **fields: object) -> FakeContext:
        return cls(time.time() + seconds, **fields)  # type: ignore[arg-type]

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:local:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.time()) * 1000))
