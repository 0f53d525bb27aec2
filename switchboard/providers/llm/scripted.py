"""A deterministic LLM that answers by keyword: for tests and IVR-style agents.

How a caller's turn is answered (``ScriptedLLMService.decide``):

1. The caller's last message is matched against ``rules`` in order; a rule
   matches when any of its ``match`` keywords (or phrases) occurs as whole
   words, ignoring case. A rule that names a tool applies only while the
   context offers that tool, as a real LLM can only call what it is offered;
   so in a conversation flow, where each node offers its own transition
   functions, the rules follow the flow without knowing it.
2. Failing that, with ``match_tool_names``, an offered tool is chosen whose
   name's words occur in the caller's message (``transfer_to_billing``
   matches "billing, please"), among tools that need no arguments; the best
   count of words wins, then the earlier tool. This is how a flow's
   transition functions can be selected with no rules at all.
3. Failing that, the ``fallback`` is said.

A matched rule says its ``reply`` and calls its ``tool`` with ``arguments``
in the same response. When Pipecat runs the LLM again after the tool's
result, the turn is already answered, so nothing more is said (override
``follow_up`` to change that).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.processors.aggregators.llm_context import LLMContext, LLMContextMessage

from switchboard.agents.schema import LLMSettings
from switchboard.providers.base import BuildContext, LLMProvider
from switchboard.providers.llm.offline import (
    OfflineLLMService,
    PlannedReply,
    PlannedToolCall,
    caller_turn,
    offered_tools,
)
from switchboard.providers.options import ScriptedOptions, ScriptedRule

# Words that say nothing about which tool is meant.
_GENERIC_NAME_WORDS = frozenset(
    {"a", "an", "and", "call", "do", "for", "function", "go", "goto", "handle", "in", "of", "on",
     "or", "set", "the", "to", "tool", "transition", "with"}
)  # fmt: skip


def contains_words(text: str, phrase: str) -> bool:
    """Whether ``phrase`` occurs in ``text`` as whole words, ignoring case."""
    words = phrase.strip().lower()
    if not words:
        return False
    return re.search(rf"(?<!\w){re.escape(words)}(?!\w)", text.lower()) is not None


def name_words(tool_name: str) -> list[str]:
    """The meaningful words of a tool's name: ``transferToBilling`` -> transfer, billing."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", tool_name)
    words = re.split(r"[^A-Za-z0-9]+", spaced.lower())
    return [w for w in words if w and w not in _GENERIC_NAME_WORDS]


class ScriptedLLMService(OfflineLLMService):
    """Answers from rules, instantly unless a pace is given."""

    def __init__(
        self,
        *,
        rules: Sequence[ScriptedRule] = (),
        fallback: str = ScriptedOptions().fallback,
        match_tool_names: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("model", "scripted")
        super().__init__(**kwargs)
        self.rules = list(rules)
        self.fallback = fallback
        self.match_tool_names = match_tool_names

    async def plan_reply(self, context: LLMContext) -> PlannedReply:
        words, since = caller_turn(context)
        if words is None:
            return PlannedReply()  # nobody has spoken yet: the greeting is not ours
        if since:
            return self.follow_up(context, since)
        return self.decide(words, offered_tools(context))

    def decide(self, words: str, tools: Sequence[FunctionSchema]) -> PlannedReply:
        """The answer to the caller's ``words`` given the ``tools`` on offer."""
        offered = {tool.name for tool in tools}
        for rule in self.rules:
            if rule.tool is not None and rule.tool not in offered:
                continue
            if any(contains_words(words, keyword) for keyword in rule.match):
                calls = [PlannedToolCall(rule.tool, dict(rule.arguments))] if rule.tool else []
                return PlannedReply(text=rule.reply, tool_calls=calls)
        if self.match_tool_names:
            tool = self.tool_named_in(words, tools)
            if tool is not None:
                return PlannedReply(tool_calls=[PlannedToolCall(tool.name)])
        return PlannedReply(text=self.fallback)

    @staticmethod
    def tool_named_in(words: str, tools: Sequence[FunctionSchema]) -> FunctionSchema | None:
        """The offered tool (needing no arguments) whose name's words the caller said most."""
        best, best_count = None, 0
        for tool in tools:
            if tool.required:
                continue
            count = sum(contains_words(words, w) for w in set(name_words(tool.name)))
            if count > best_count:
                best, best_count = tool, count
        return best

    def follow_up(self, context: LLMContext, since: list[LLMContextMessage]) -> PlannedReply:
        """The answer when the LLM runs again within a turn (after a tool's result)."""
        return PlannedReply()


class ScriptedLLM(LLMProvider):
    """Replies and tool calls by keyword (``ScriptedOptions``); no delay."""

    def create(self, settings: LLMSettings, ctx: BuildContext) -> ScriptedLLMService:
        options = ScriptedOptions.model_validate(settings.options)
        return ScriptedLLMService(
            rules=options.rules,
            fallback=options.fallback,
            # Read when ScriptedOptions offers it (for conversation flows).
            match_tool_names=options.match_tool_names,
        )
