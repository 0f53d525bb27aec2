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
in the same response; ``capture`` fills further arguments from the caller's
words by regular expression (the rule applies only when each is found), run
on RE2 so that no pattern can backtrack on what a caller says.
When Pipecat runs the LLM again after the tool's result, the rule's
``result_reply`` is said with ``{{ key }}`` taken from the result, or on
failure its ``error_reply`` (else the options' ``tool_error_reply``); with
neither, nothing more is said, since the turn is already answered.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.processors.aggregators.llm_context import LLMContext, LLMContextMessage

from switchboard.agents.schema import LLMSettings
from switchboard.agents.template import render
from switchboard.providers.base import BuildContext, LLMProvider
from switchboard.providers.llm.offline import (
    OfflineLLMService,
    PlannedReply,
    PlannedToolCall,
    ToolResult,
    caller_turn,
    offered_tools,
    tool_results,
)
from switchboard.providers.options import ScriptedOptions, ScriptedRule
from switchboard.schema_validation import compile_pattern

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
        tool_error_reply: str = ScriptedOptions().tool_error_reply,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("model", "scripted")
        super().__init__(**kwargs)
        self.rules = list(rules)
        self.fallback = fallback
        self.match_tool_names = match_tool_names
        self.tool_error_reply = tool_error_reply

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
            if not any(contains_words(words, keyword) for keyword in rule.match):
                continue
            captured = captures(words, rule.capture)
            if captured is None:
                continue
            arguments = {**rule.arguments, **captured}
            calls = [PlannedToolCall(rule.tool, arguments)] if rule.tool else []
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
        results = tool_results(since)
        return PlannedReply(text=self.result_reply(results[-1])) if results else PlannedReply()

    def result_reply(self, result: ToolResult) -> str:
        """What to say about a tool's result: its rule's reply, or the error reply."""
        value = result.value
        failed = isinstance(value, dict) and "error" in value
        rule = next((r for r in self.rules if r.tool == result.name), None)
        if failed:
            return (rule.error_reply if rule else "") or self.tool_error_reply
        if rule is None or not rule.result_reply:
            return ""
        return render(rule.result_reply, value if isinstance(value, dict) else {"result": value})


def captures(words: str, patterns: dict[str, str]) -> dict[str, str] | None:
    """Each pattern's first group (or whole match) in ``words``; None if one is missing."""
    found: dict[str, str] = {}
    for name, pattern in patterns.items():
        match = compile_pattern(pattern, ignore_case=True).search(words)
        if match is None:
            return None
        value = match.group(1) if match.groups() else match.group(0)
        # Sentence punctuation is not part of the value ("10 am." means "10 am").
        found[name] = (value or "").strip(" ,.;:!?")
    return found


class ScriptedLLM(LLMProvider):
    """Replies and tool calls by keyword (``ScriptedOptions``); no delay."""

    def create(self, settings: LLMSettings, ctx: BuildContext) -> ScriptedLLMService:
        options = ScriptedOptions.model_validate(settings.options)
        return ScriptedLLMService(
            rules=options.rules,
            fallback=options.fallback,
            # Read when ScriptedOptions offers it (for conversation flows).
            match_tool_names=options.match_tool_names,
            tool_error_reply=options.tool_error_reply,
        )
