"""Concurrent-call limits, per server and per workspace.

A slot is taken before a call is answered and given back in the session's
``finally``, however the call ends. These counters live in this process
(embedded mode); a server behind a load balancer enforces its own share.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


class AtCapacity(Exception):
    """No slot free; ``scope`` says which limit was hit."""

    def __init__(self, scope: str) -> None:
        super().__init__(f"at capacity ({scope})")
        self.scope = scope


@dataclass
class CallSlots:
    server_limit: int
    _in_use: Counter[str] = field(default_factory=Counter)
    _calls: dict[str, str] = field(default_factory=dict)  # call id -> workspace id

    @property
    def total(self) -> int:
        return len(self._calls)

    def in_use(self, workspace_id: str) -> int:
        return self._in_use[workspace_id]

    def acquire(self, call_id: str, workspace_id: str, workspace_limit: int) -> None:
        if call_id in self._calls:
            return
        if self.total >= self.server_limit:
            raise AtCapacity("server")
        if self._in_use[workspace_id] >= workspace_limit:
            raise AtCapacity("workspace")
        self._calls[call_id] = workspace_id
        self._in_use[workspace_id] += 1

    def release(self, call_id: str) -> None:
        workspace_id = self._calls.pop(call_id, None)
        if workspace_id is not None:
            self._in_use[workspace_id] -= 1
            if self._in_use[workspace_id] <= 0:
                del self._in_use[workspace_id]
