"""Asking for an outbound call: every check before anything is dialled, then a queued record.

``POST /api/v1/calls`` (and each batch row) comes here. A bad ``to``, a
``to`` on the workspace's do-not-call list, an agent with no number to call
from, a carrier without credentials, or variables that do not fit the agent's
schema is an error naming the field, and nothing is recorded or dialled.
What passes becomes a ``queued`` call carrying how to dial it
(``Call.dial``); ``switchboard.telephony.dial`` places it (and asks the
do-not-call list again, at dial time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.agents.schema import MAX_GREETING_CHARS, AgentConfig, VariableSpec
from switchboard.agents.service import config_of, get_agent
from switchboard.calls import service as calls
from switchboard.db.models import (
    Agent,
    Call,
    CallDirection,
    CallStatus,
    CarrierAccount,
    PhoneNumber,
)
from switchboard.dialer.dnc import blocked
from switchboard.errors import InvalidInput, NotFound
from switchboard.phone import to_e164
from switchboard.telephony.carrier import Carrier, MachineDetection
from switchboard.telephony.credentials import CarrierName
from switchboard.telephony.registry import carrier_class

VariableValue = Annotated[str, Field(max_length=1000)] | float | bool


class OutboundCallIn(BaseModel):
    """What ``POST /api/v1/calls`` takes."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    agent_id: str = Field(max_length=40)
    to: str = Field(max_length=32, examples=["+14155550123"])
    from_number: str | None = Field(
        default=None,
        alias="from",
        max_length=32,
        description="a number of the workspace; default: a number bound to the agent",
    )
    variables: dict[str, VariableValue] = Field(default_factory=dict, max_length=100)
    machine_detection: MachineDetection = Field(
        default="off",
        description="'detect': hang up on an answering machine; 'leave_message': wait for"
        " its greeting to end and leave the voicemail message",
    )
    voicemail_message: str | None = Field(
        default=None,
        max_length=MAX_GREETING_CHARS,
        description="default: the agent's outbound voicemail message",
    )
    ring_timeout_seconds: int = Field(default=30, ge=5, le=120)


@dataclass(frozen=True)
class DialPlan:
    """Everything checked about how an agent's calls are placed, before any is."""

    agent: Agent
    config: AgentConfig
    number: PhoneNumber  # the workspace number the calls come from
    carrier: type[Carrier]
    dial: dict[str, Any]  # stored on each call: machine detection, voicemail, ring timeout


async def plan_dialing(
    session: AsyncSession,
    workspace_id: str,
    *,
    agent_id: str,
    from_number: str | None,
    machine_detection: MachineDetection,
    voicemail_message: str | None,
    ring_timeout_seconds: int,
    simulator_enabled: bool,
) -> DialPlan:
    """Check the agent, the number to call from and its carrier's account, and the
    machine-detection policy; each failure names its field."""
    try:
        agent = await get_agent(session, workspace_id, agent_id)
    except NotFound as exc:
        raise NotFound("agent", agent_id, field="agent_id") from exc
    if not agent.active:
        raise InvalidInput("the agent is not active", field="agent_id")
    config = config_of(agent)
    number = await _from_number(session, workspace_id, agent.id, from_number)
    name = CarrierName(number.carrier)
    if name is CarrierName.SIMULATOR and not simulator_enabled:
        raise InvalidInput("the simulator carrier exists only in development", field="from")
    cls = carrier_class(name)
    if cls.credentials_model is not None and not await _has_account(session, workspace_id, name):
        raise InvalidInput(
            f"{number.number} is a {name.value} number and the workspace has no"
            f" {name.value} account: PUT /api/v1/carriers/{name.value} first",
            field="from",
        )
    message = (voicemail_message or config.outbound.voicemail_message).strip()
    if machine_detection == "leave_message" and not message:
        raise InvalidInput(
            "leaving a message needs a voicemail_message (or the agent's"
            " outbound.voicemail_message)",
            field="voicemail_message",
        )
    dial = {
        "machine_detection": machine_detection,
        "voicemail_message": message,
        "ring_timeout_seconds": ring_timeout_seconds,
    }
    return DialPlan(agent, config, number, cls, dial)


async def create_outbound_call(
    session: AsyncSession,
    workspace_id: str,
    request: OutboundCallIn,
    *,
    simulator_enabled: bool,
) -> Call:
    """Check ``request`` and record it as a queued outbound call (nothing is dialled here)."""
    plan = await plan_dialing(
        session,
        workspace_id,
        agent_id=request.agent_id,
        from_number=request.from_number,
        machine_detection=request.machine_detection,
        voicemail_message=request.voicemail_message,
        ring_timeout_seconds=request.ring_timeout_seconds,
        simulator_enabled=simulator_enabled,
    )
    to = callee_number(request.to, plan.carrier)
    if await blocked(session, workspace_id, to) is not None:
        raise InvalidInput(f"{to} is on the do-not-call list", field="to")
    return await queue_call(
        session,
        plan,
        to=to,
        variables=checked_variables(plan.config, request.variables),
    )


async def queue_call(
    session: AsyncSession,
    plan: DialPlan,
    *,
    to: str,
    variables: dict[str, Any],
    call_id: str | None = None,
    batch_id: str | None = None,
    campaign_id: str | None = None,
    commit: bool = True,
) -> Call:
    """Record one queued call of ``plan`` to ``to`` (already checked), of a batch or a
    campaign if named."""
    return await calls.create_call(
        session,
        call_id=call_id,
        workspace_id=plan.agent.workspace_id,
        agent_id=plan.agent.id,
        agent_version=plan.agent.version,
        direction=CallDirection.OUTBOUND,
        carrier=plan.carrier.name.value,
        from_number=plan.number.number,
        to_number=to,
        status=CallStatus.QUEUED,
        variables=variables,
        dial={**plan.dial, "batch_id": batch_id},
        campaign_id=campaign_id,
        commit=commit,
    )


def callee_number(raw: str, carrier: type[Carrier]) -> str:
    """``raw`` in E.164: a real number for a real carrier, E.164's shape for a test one."""
    try:
        return to_e164(raw, strict=carrier.real_numbers)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="to") from exc


def checked_variables(config: AgentConfig, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` if each is a variable the agent declares, of its declared type."""
    for name, value in values.items():
        spec: VariableSpec | None = config.variables.get(name)
        if spec is None:
            declared = sorted(config.variables) or "none"
            raise InvalidInput(
                f"the agent declares no variable {name!r} (it declares {declared})",
                field=f"variables.{name}",
            )
        if not _fits(spec, value):
            raise InvalidInput(f"must be a {spec.type}", field=f"variables.{name}")
    return dict(values)


def _fits(spec: VariableSpec, value: Any) -> bool:
    if spec.type == "boolean":
        return isinstance(value, bool)
    if spec.type == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


async def _from_number(
    session: AsyncSession, workspace_id: str, agent_id: str, requested: str | None
) -> PhoneNumber:
    """The workspace number asked for, or the first one bound to the agent."""
    query = select(PhoneNumber).where(PhoneNumber.workspace_id == workspace_id)
    if requested is not None:
        number = await session.scalar(query.where(PhoneNumber.number == requested.strip()))
        if number is None:
            raise InvalidInput(f"{requested} is not a number of this workspace", field="from")
        return number
    number = await session.scalar(
        query.where(PhoneNumber.agent_id == agent_id).order_by(PhoneNumber.created_at).limit(1)
    )
    if number is None:
        raise InvalidInput(
            "the agent has no number to call from: bind one to it, or send 'from'", field="from"
        )
    return number


async def _has_account(session: AsyncSession, workspace_id: str, carrier: CarrierName) -> bool:
    found = await session.scalar(
        select(CarrierAccount.id).where(
            CarrierAccount.workspace_id == workspace_id, CarrierAccount.carrier == carrier.value
        )
    )
    return found is not None
