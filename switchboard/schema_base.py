"""Pydantic building blocks shared by the agent and flow schemas.

They live apart from both so ``RuntimeConfig`` (agents) can carry a
``FlowDocument`` (flows) while flows reuse the same identifier rules.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

# A lower-case key a person types and an LLM may say: departments, variables, flow nodes.
Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class StrictModel(BaseModel):
    """A model that refuses unknown fields, so a misspelt field is a 422 naming it."""

    model_config = ConfigDict(extra="forbid")
