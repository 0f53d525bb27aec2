"""The flow document: what the API accepts, exports and the runtime turns into Pipecat nodes.

A flow is a graph of nodes. Each node says who the agent is (``role_messages``)
and what to do now (``task_messages``), offers the LLM transition functions
(to other nodes) and webhook tools, and may run actions on entry and exit
(say a line, end the call, transfer). The document refers to tools by name,
so an exported flow imports into another workspace that has the same tools.

``FlowDocument`` checks what the document alone can show (one initial node,
known targets, reachability, terminal nodes that end the call or hand the
caller to a person); ``check_references`` checks it against a workspace's
tools and an agent's transfer destinations. Both raise ``FlowError``, which
names the place in the document ("nodes.2.transitions.0.to") so the API can
point at it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection
from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, Field, StringConstraints, model_validator

from switchboard.errors import InvalidInput
from switchboard.schema_base import Identifier, ParametersSchema, StrictModel, empty_parameters

FLOW_FORMAT = "switchboard.flow/v1"
MAX_NODES = 100

# A name an LLM can call: OpenAI, Anthropic and Gemini all accept this shape.
FunctionName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
# Functions every call already has; a flow may not reuse their names.
BUILTIN_FUNCTIONS = frozenset(
    {"end_call", "transfer_call", "opt_out", "set_disposition", "schedule_callback"}
)


class FlowError(InvalidInput, ValueError):
    """A flow rule broken at ``field``, a path in the document ("nodes.2.transitions.0.to").

    A ``ValueError`` so pydantic reports it from the document's validator, and an
    ``InvalidInput`` so the API shows its message and field as they are.
    """


class FlowMessage(StrictModel):
    # "developer" is how Pipecat marks instructions inside the conversation; "system" is
    # accepted for documents written for other tools and sent as "developer".
    role: Literal["developer", "system"] = "developer"
    content: str = Field(min_length=1, max_length=10_000)


class SayAction(StrictModel):
    """Speak ``text`` (``{{ key }}`` placeholders come from call variables and tool results)."""

    type: Literal["say"] = "say"
    text: str = Field(min_length=1, max_length=1_000)


class EndCallAction(StrictModel):
    """Hang up once everything queued has been said."""

    type: Literal["end_call"] = "end_call"


class TransferAction(StrictModel):
    """Hand the caller to a person: one of the agent's ``transfer_destinations``."""

    type: Literal["transfer"] = "transfer"
    department: Identifier


FlowAction = Annotated[SayAction | EndCallAction | TransferAction, Field(discriminator="type")]


class FlowTransition(StrictModel):
    """A function the LLM calls to move the conversation to node ``to``.

    ``parameters`` (a JSON Schema object) lets the move carry what the caller
    said, e.g. their name; later nodes read it as ``{{ <name>.<argument> }}``.
    """

    name: FunctionName
    description: str = Field(min_length=1, max_length=500)
    to: Identifier
    parameters: ParametersSchema = Field(default_factory=empty_parameters)


class NodeTool(StrictModel):
    """A workspace webhook tool offered at this node; ``then`` is where success leads."""

    name: FunctionName
    then: Identifier | None = None


class Position(StrictModel):
    x: float = 0.0
    y: float = 0.0


class FlowNodeSpec(StrictModel):
    key: Identifier
    role_messages: list[FlowMessage] = Field(default_factory=list, max_length=20)
    task_messages: list[FlowMessage] = Field(default_factory=list, max_length=20)
    transitions: list[FlowTransition] = Field(default_factory=list, max_length=20)
    tools: list[NodeTool] = Field(default_factory=list, max_length=20)
    pre_actions: list[FlowAction] = Field(default_factory=list, max_length=10)
    post_actions: list[FlowAction] = Field(default_factory=list, max_length=10)
    respond_immediately: bool = Field(
        default=True, description="run the LLM on entering the node (false: wait for the caller)"
    )
    is_initial: bool = False
    is_terminal: bool = False
    position: Position = Field(default_factory=Position)

    def targets(self) -> list[str]:
        """Every node this node can lead to."""
        return [t.to for t in self.transitions] + [t.then for t in self.tools if t.then]

    def actions(self) -> list[SayAction | EndCallAction | TransferAction]:
        return [*self.pre_actions, *self.post_actions]

    def ends_call(self) -> bool:
        """Whether entering this node ends the call or hands the caller to a person."""
        return any(isinstance(a, EndCallAction | TransferAction) for a in self.actions())


class FlowDocument(StrictModel):
    """A whole flow; saving one replaces the agent's previous flow."""

    format: Literal["switchboard.flow/v1"] = "switchboard.flow/v1"
    nodes: list[FlowNodeSpec] = Field(min_length=1, max_length=MAX_NODES)

    @model_validator(mode="after")
    def _valid_graph(self) -> Self:
        keys: set[str] = set()
        for i, node in enumerate(self.nodes):
            if node.key in keys:
                raise FlowError(
                    f"node keys must be unique; {node.key!r} is used more than once",
                    field=f"nodes.{i}.key",
                )
            keys.add(node.key)
        initial = [node.key for node in self.nodes if node.is_initial]
        if len(initial) != 1:
            raise FlowError(
                f"a flow needs exactly one initial node; found {len(initial)}", field="nodes"
            )
        for i, node in enumerate(self.nodes):
            _check_node(node, f"nodes.{i}", keys)
        reachable = self.reachable_from(initial[0])
        unreachable = [i for i, node in enumerate(self.nodes) if node.key not in reachable]
        if unreachable:
            raise FlowError(
                f"nodes {[self.nodes[i].key for i in unreachable]} cannot be reached from the"
                f" initial node {initial[0]!r}",
                field=f"nodes.{unreachable[0]}",
            )
        return self

    @property
    def initial(self) -> FlowNodeSpec:
        return next(node for node in self.nodes if node.is_initial)

    def node(self, key: str) -> FlowNodeSpec:
        return next(node for node in self.nodes if node.key == key)

    def reachable_from(self, key: str) -> set[str]:
        edges = {node.key: node.targets() for node in self.nodes}
        seen, queue = {key}, deque([key])
        while queue:
            for target in edges.get(queue.popleft(), []):
                if target not in seen:
                    seen.add(target)
                    queue.append(target)
        return seen

    def tool_names(self) -> set[str]:
        return {tool.name for node in self.nodes for tool in node.tools}

    def departments(self) -> set[str]:
        return {
            action.department
            for node in self.nodes
            for action in node.actions()
            if isinstance(action, TransferAction)
        }


def _check_node(node: FlowNodeSpec, path: str, keys: set[str]) -> None:
    where = f"node {node.key!r}"
    targets = [(f"{path}.transitions.{i}.to", t.to) for i, t in enumerate(node.transitions)]
    targets += [(f"{path}.tools.{i}.then", t.then) for i, t in enumerate(node.tools) if t.then]
    for field, target in targets:
        if target not in keys:
            raise FlowError(
                f"{where} leads to {target!r}, which is not a node of this flow", field=field
            )
    names = [(f"{path}.transitions.{i}.name", t.name) for i, t in enumerate(node.transitions)]
    names += [(f"{path}.tools.{i}.name", t.name) for i, t in enumerate(node.tools)]
    seen: set[str] = set()
    for field, name in names:
        if name in BUILTIN_FUNCTIONS:
            raise FlowError(
                f"{where}: {name!r} is a built-in function and cannot be redefined", field=field
            )
        if name in seen:
            raise FlowError(
                f"{where}: function names must be unique within a node; {name!r} is repeated",
                field=field,
            )
        seen.add(name)
    if node.is_terminal:
        if targets:
            raise FlowError(f"{where} is terminal but leads on to other nodes", field=targets[0][0])
        if not node.ends_call():
            raise FlowError(
                f"{where} is terminal, so it must end the call (an 'end_call' action) or hand"
                " the caller to a person (a 'transfer' action)",
                field=f"{path}.is_terminal",
            )
    elif not targets and not node.ends_call():
        raise FlowError(
            f"{where} is a dead end: give it a transition, or mark it terminal with an"
            " 'end_call' or 'transfer' action",
            field=f"{path}.transitions",
        )


def check_references(
    flow: FlowDocument, *, tool_names: Collection[str], departments: Collection[str]
) -> None:
    """Raise ``FlowError`` at the first tool or transfer department the flow may not use."""
    for i, node in enumerate(flow.nodes):
        for j, tool in enumerate(node.tools):
            if tool.name not in tool_names:
                raise FlowError(
                    f"tool {tool.name!r} is not a webhook tool of this workspace that this"
                    " agent may use",
                    field=f"nodes.{i}.tools.{j}.name",
                )
        for kind, actions in (
            ("pre_actions", node.pre_actions),
            ("post_actions", node.post_actions),
        ):
            for j, action in enumerate(actions):
                if isinstance(action, TransferAction) and action.department not in departments:
                    raise FlowError(
                        f"transfer department {action.department!r} is not among the agent's"
                        " transfer_destinations",
                        field=f"nodes.{i}.{kind}.{j}.department",
                    )


class FlowNodeOut(FlowNodeSpec):
    """A stored node: the spec plus what storage adds (not part of an export)."""

    id: str
    updated_at: datetime


class FlowOut(StrictModel):
    """An agent's flow as stored; the export is the same without ``id`` and ``updated_at``."""

    format: Literal["switchboard.flow/v1"] = "switchboard.flow/v1"
    nodes: list[FlowNodeOut]


class FlowCheck(BaseModel):
    """The answer of a dry run that found nothing wrong (problems come back as a 422)."""

    valid: Literal[True] = True
