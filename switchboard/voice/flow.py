"""Running an agent's flow in a call with Pipecat's built-in flows (``pipecat.flows``).

Each stored node becomes a ``NodeConfig``: its role messages join the agent's
prompt as the system instruction, its task messages are appended to the
context, its transitions and webhook tools become the functions the LLM is
offered there, and its actions run on entry (before the LLM) and after. The
built-in functions and the agent's own tools are offered at every node.
Entering a node records ``node_entered``; moving records ``node_transition``.

Tool results are kept in the flow's state under the tool's name, next to the
call variables, so a later node can say ``{{ book_appointment.slot }}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

from pipecat.flows import ActionConfig, FlowManager, NodeConfig
from pipecat.flows.manager import _PLACEHOLDER

from switchboard.flows.schema import (
    FlowAction,
    FlowDocument,
    FlowNodeSpec,
    FlowTransition,
    NodeTool,
    SayAction,
)
from switchboard.tools.loading import WebhookTool
from switchboard.voice.functions import CallFunction, NextNode, Outcome, signature
from switchboard.voice.tap import EventSink
from switchboard.voice.tools import BuiltinTools
from switchboard.voice.webhooks import WebhookRunner


class LenientFlowManager(FlowManager):
    """A FlowManager whose missing ``{{ key }}`` values render as nothing.

    Pipecat refuses to enter a node whose text names a key not in state; on a
    phone call that would strand the caller (a failed lookup left no result),
    so the line is said without the value instead.
    """

    def _render_node(self, node_id: str, node_config: NodeConfig) -> NodeConfig:
        state = self.state

        def render(text: str) -> str:
            return _PLACEHOLDER.sub(
                lambda m: _lookup(state, m) if not m.group(1) else m.group(0)[1:], text
            )

        rendered = dict(node_config)
        if role := node_config.get("role_message"):
            rendered["role_message"] = render(role)
        rendered["task_messages"] = [
            {**m, "content": render(m["content"])} if isinstance(m.get("content"), str) else m
            for m in node_config["task_messages"]
        ]
        for key in ("pre_actions", "post_actions"):
            actions = cast(list[dict[str, Any]], node_config.get(key) or [])
            if actions:
                rendered[key] = [
                    {**a, "text": render(a["text"])}
                    if a.get("type") == "tts_say" and isinstance(a.get("text"), str)
                    else a
                    for a in actions
                ]
        return cast(NodeConfig, rendered)


def _lookup(state: Mapping[str, Any], match: re.Match[str]) -> str:
    value: Any = state
    for part in match.group(2).split("."):
        if not isinstance(value, Mapping) or part not in value:
            return ""
        value = value[part]
    return "" if value is None else str(value)


class CallFlow:
    """One call's walk through a flow."""

    def __init__(
        self,
        document: FlowDocument,
        *,
        system_prompt: str,
        builtins: BuiltinTools,
        webhooks: WebhookRunner,
        tools: Mapping[str, WebhookTool],
        global_functions: list[CallFunction],
        variables: Mapping[str, Any],
        event: EventSink,
    ) -> None:
        self.initial = document.initial.key
        self.system_prompt = system_prompt
        self.builtins = builtins
        self.webhooks = webhooks
        self.tools = tools
        self.global_functions = global_functions
        self.variables = dict(variables)
        self.event = event
        self.manager: FlowManager | None = None
        self.nodes = {node.key: self._node(node) for node in document.nodes}

    async def start(self, *, llm: Any, aggregators: Any, worker: Any, transport: Any) -> None:
        """Enter the initial node (after the greeting, when there is one)."""
        manager = LenientFlowManager(
            llm=llm,
            context_aggregator=aggregators,
            worker=worker,
            transport=transport,
            global_functions=[
                f.flows_schema(self._keep_result(f.name)) for f in self.global_functions
            ],
        )
        manager.state.update(self.variables)
        manager.register_action("end_call", self._end_action)
        manager.register_action("transfer", self._transfer_action)
        self.manager = manager
        await self.event("node_entered", node=self.initial)
        await manager.initialize(self.nodes[self.initial])

    # -- building nodes ----------------------------------------------------------------

    def _node(self, spec: FlowNodeSpec) -> NodeConfig:
        config: NodeConfig = {
            "name": spec.key,
            "task_messages": [
                {"role": "developer", "content": m.content} for m in spec.task_messages
            ],
            "respond_immediately": spec.respond_immediately,
        }
        if spec.role_messages:
            config["role_message"] = "\n\n".join(
                [self.system_prompt, *(m.content for m in spec.role_messages)]
            )
        functions = [self._transition(spec.key, t) for t in spec.transitions]
        functions += [self._tool(spec.key, t) for t in spec.tools if t.name in self.tools]
        if functions:
            config["functions"] = list(functions)
        if spec.pre_actions:
            config["pre_actions"] = [self._action(spec.key, a) for a in spec.pre_actions]
        if spec.post_actions:
            config["post_actions"] = [self._action(spec.key, a) for a in spec.post_actions]
        return config

    def _transition(self, node: str, transition: FlowTransition) -> Any:
        async def run(_arguments: dict[str, Any]) -> Outcome:
            return Outcome(None)

        async def go(_outcome: Outcome, arguments: dict[str, Any]) -> NodeConfig | None:
            if arguments and self.manager is not None:
                self.manager.state[transition.name] = dict(arguments)
            return await self._enter(node, transition.to, via=transition.name, arguments=arguments)

        function = CallFunction(
            name=transition.name,
            description=transition.description,
            run=run,
            **signature(transition.parameters),
        )
        return function.flows_schema(go)

    def _tool(self, node: str, binding: NodeTool) -> Any:
        function = self.webhooks.function(self.tools[binding.name])
        keep = self._keep_result(binding.name)

        async def then(outcome: Outcome, arguments: dict[str, Any]) -> NodeConfig | None:
            await keep(outcome, arguments)
            if outcome.succeeded and binding.then is not None:
                return await self._enter(node, binding.then, via=binding.name)
            return None

        return function.flows_schema(then)

    def _keep_result(self, name: str) -> NextNode:
        async def keep(outcome: Outcome, _arguments: dict[str, Any]) -> NodeConfig | None:
            if self.manager is not None and outcome.succeeded and outcome.result is not None:
                self.manager.state[name] = outcome.result
            return None

        return keep

    def _action(self, node: str, action: FlowAction) -> ActionConfig:
        if isinstance(action, SayAction):
            return {"type": "tts_say", "text": action.text}
        # Our own action types (registered in ``start``); Pipecat waits for a preceding
        # ``tts_say`` to pass through the pipeline before running them.
        return cast(ActionConfig, {**action.model_dump(), "node": node})

    async def _end_action(self, action: dict[str, Any], _manager: FlowManager) -> None:
        await self.event("flow_action", node=action["node"], action="end_call")
        await self.builtins.end("flow_ended")

    async def _transfer_action(self, action: dict[str, Any], _manager: FlowManager) -> None:
        department = action["department"]
        await self.event(
            "flow_action", node=action["node"], action="transfer", department=department
        )
        await self.builtins.transfer_to(department, notice=None)

    async def _enter(
        self, source: str, target: str, *, via: str, arguments: dict[str, Any] | None = None
    ) -> NodeConfig:
        extra = {"arguments": dict(arguments)} if arguments else {}
        await self.event("node_transition", source=source, target=target, function=via, **extra)
        await self.event("node_entered", node=target)
        return self.nodes[target]
