"""``{{ name }}`` placeholders in greetings and prompts, filled from call variables."""

from __future__ import annotations

import re
from collections.abc import Mapping

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

# Variables every call has, whatever the agent declares.
BUILTIN_VARIABLES = frozenset(
    {"caller_number", "called_number", "agent_name", "call_id", "direction", "current_time"}
)


def placeholders(template: str) -> set[str]:
    return set(PLACEHOLDER.findall(template))


def render(template: str, values: Mapping[str, object]) -> str:
    """Fill placeholders; a missing one becomes empty text, never ``{{x}}`` spoken aloud."""

    def fill(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        return "" if value is None else str(value)

    return PLACEHOLDER.sub(fill, template)
