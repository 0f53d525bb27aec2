"""The dental receptionist: a flow agent that books through a webhook tool and transfers.

Shipped as a seed (number ``DENTAL_NUMBER``) so a fresh install can ring a
multi-step agent offline. It runs on the ``scripted`` LLM, whose keyword
rules walk the flow deterministically; switch ``llm`` to a real model and
the same flow runs from its task messages instead.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.agents.schema import AgentConfig
from switchboard.agents.service import create_agent
from switchboard.auth.service import Principal
from switchboard.crypto import SecretBox
from switchboard.flows.schema import FlowDocument
from switchboard.flows.service import save_flow
from switchboard.tools.schema import ToolConfig, WorkspacePolicyPatch
from switchboard.tools.service import create_tool, get_workspace, update_workspace_policy

DENTAL_NUMBER = "+15550101"
FRONT_DESK_NUMBER = "+14158675309"  # a valid number; the simulator never dials it
BOOKING_PATH = "/demo/dental/appointments"

_WEEKDAY = r"\b(monday|tuesday|wednesday|thursday|friday)\b"
_HOUR = (
    r"\b((?:\d{1,2}(?::\d{2})?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
    r"(?:\s*(?:a\.?\s?m\.?|p\.?\s?m\.?|o'clock))?|noon)"
)

BOOK_TOOL: dict[str, Any] = {
    "name": "book_appointment",
    "description": "Book an appointment at the practice for a weekday and time.",
    "parameters": {
        "type": "object",
        "properties": {
            "day": {"type": "string", "description": "weekday, e.g. Tuesday"},
            "time": {"type": "string", "description": "time of day, e.g. 10 am"},
        },
        "required": ["day", "time"],
    },
    "method": "POST",
    "timeout_seconds": 5.0,
    "retries": 1,
    "wait_message": "One moment while I check the diary.",
}

# Keyword rules for the scripted LLM. A rule naming a tool applies only where the flow
# offers that tool, so "yes" means "existing patient" at the greeting and "something
# more" after a booking.
SCRIPTED_RULES: list[dict[str, Any]] = [
    {"match": ["yes", "yeah", "i have", "before"], "tool": "existing_patient"},
    {"match": ["no", "first time", "new"], "tool": "new_patient"},
    {"match": ["question", "hours", "prices", "price"], "tool": "ask_question"},
    {
        "match": ["monday", "tuesday", "wednesday", "thursday", "friday"],
        "tool": "book_appointment",
        "capture": {"day": _WEEKDAY, "time": _HOUR},
        "error_reply": "Sorry, that time is not available. Which other day and time suit you?",
    },
    {"match": ["monday", "tuesday", "wednesday", "thursday", "friday"],
     "reply": "What time on that day would suit you?"},
    {"match": ["yes", "yeah", "something else", "another"], "tool": "anything_else"},
    {"match": ["no", "that's all", "that is all", "nothing"], "tool": "no_thanks"},
    {"match": ["that's all", "that is all", "no more", "bye", "goodbye", "nothing"],
     "tool": "goodbye"},
    {"match": ["hours", "open"],
     "reply": "We are open Monday to Friday, 8 am to 5 pm. Anything else?"},
    {"match": ["price", "prices", "cost", "how much"],
     "reply": "A cleaning is 95 dollars and a check-up is 60 dollars. Anything else?"},
]  # fmt: skip


def dental_flow() -> FlowDocument:
    text = resources.files(__package__).joinpath("dental_flow.json").read_text(encoding="utf-8")
    return FlowDocument.model_validate_json(text)


def dental_agent(**overrides: Any) -> AgentConfig:
    """The receptionist's agent config; ``overrides`` replace top-level fields (tests)."""
    fields: dict[str, Any] = {
        "name": "Dental receptionist (flow)",
        "description": "Greets, books through a webhook, answers questions, transfers.",
        "system_prompt": (
            "You are the phone receptionist of Switchboard Dental. Follow the current step's"
            " instructions and keep every answer to one or two short sentences."
        ),
        "greeting": "",  # the flow's first node greets
        "llm": {
            "provider": "scripted",
            "options": {"rules": SCRIPTED_RULES, "match_tool_names": True},
        },
        "transfer_destinations": [
            {"name": "front_desk", "number": FRONT_DESK_NUMBER, "description": "a person"}
        ],
        **overrides,
    }
    return AgentConfig.model_validate(fields)


async def seed_dental(
    session: AsyncSession, box: SecretBox, principal: Principal, public_url: str
) -> str:
    """Create the booking tool, the receptionist and its flow; returns the agent id.

    The tool calls this server's own appointment book, so the server's host is
    added to the workspace's allowed private hosts.
    """
    host = httpx.URL(public_url).host
    workspace = await get_workspace(session, principal.workspace_id)
    if host not in workspace.allowed_private_hosts:
        hosts = [*workspace.allowed_private_hosts, host]
        policy = WorkspacePolicyPatch(allowed_private_hosts=hosts)
        await update_workspace_policy(session, principal, policy)
    tool = ToolConfig.model_validate({**BOOK_TOOL, "url": f"{public_url}{BOOKING_PATH}"})
    await create_tool(session, box, principal.workspace_id, tool)
    agent = await create_agent(session, principal, dental_agent(), allow_testing=False)
    await save_flow(session, principal.workspace_id, agent.id, dental_flow())
    return agent.id
