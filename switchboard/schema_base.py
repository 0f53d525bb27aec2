"""Pydantic building blocks shared by the agent and flow schemas.

They live apart from both so ``RuntimeConfig`` (agents) can carry a
``FlowDocument`` (flows) while flows reuse the same identifier rules.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from switchboard.schema_validation import check_tenant_schema

# A lower-case key a person types and an LLM may say: departments, variables, flow nodes.
Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class StrictModel(BaseModel):
    """A model that refuses unknown fields, so a misspelt field is a 422 naming it."""

    model_config = ConfigDict(extra="forbid")


def empty_parameters() -> dict[str, Any]:
    return {"type": "object", "properties": {}}


def _object_schema(value: dict[str, Any]) -> dict[str, Any]:
    """LLM providers take a function's arguments as one JSON object, checked as it will run."""
    check_tenant_schema(value)
    if value.get("type") != "object":
        raise ValueError('must be an object schema: {"type": "object", "properties": {...}}')
    return {**value, "properties": value.get("properties", {})}


# The arguments of a function the LLM calls (a webhook tool, a flow transition).
ParametersSchema = Annotated[dict[str, Any], AfterValidator(_object_schema)]
