"""What the API accepts for a webhook tool and for a workspace's policy.

A tool is shown to an LLM as a function (``name``, ``description``,
``parameters``) and runs as an HTTP request, so every field is checked
here before it can reach a call: a name the LLM providers accept, a
parameter schema that is valid JSON Schema, and URL, method and headers
the SSRF-safe client (:mod:`switchboard.tools.safe_http`) would send.
Checks that need the database (agent ids, unique names) live in
:mod:`switchboard.tools.service`.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from switchboard.errors import InvalidInput
from switchboard.flows.schema import BUILTIN_FUNCTIONS, FunctionName
from switchboard.schema_base import ParametersSchema, empty_parameters
from switchboard.tools.addresses import METADATA_HOSTNAMES, never_allowed, parse_url
from switchboard.tools.safe_http import ALLOWED_METHODS, SIGNATURE_HEADER, check_headers

DEFAULT_WAIT_MESSAGE = "One moment while I check that."
MAX_HEADERS = 50
MAX_HEADER_VALUE_CHARS = 4096
MAX_ALLOWED_PRIVATE_HOSTS = 50
MAX_WORKSPACE_CALLS = 10_000


def _checked_headers(value: dict[str, str]) -> dict[str, str]:
    """Headers the safe client would send as they are: no injection, nothing reserved."""
    try:
        check_headers(value)
    except InvalidInput as exc:
        raise ValueError(exc.message) from exc
    seen: set[str] = set()
    for name, text in value.items():
        if name.lower() in seen:
            raise ValueError(f"header {name!r} is given twice")
        seen.add(name.lower())
        if len(text) > MAX_HEADER_VALUE_CHARS:
            raise ValueError(f"header {name!r} is longer than {MAX_HEADER_VALUE_CHARS} characters")
    return value


HeaderMap = Annotated[
    dict[str, str], Field(max_length=MAX_HEADERS), AfterValidator(_checked_headers)
]


class ToolConfig(BaseModel):
    """The whole editable configuration of a webhook tool, secrets included."""

    model_config = ConfigDict(extra="forbid")

    name: FunctionName = Field(examples=["check_availability"])
    description: str = Field(min_length=1, max_length=1000)
    parameters: ParametersSchema = Field(default_factory=empty_parameters)
    url: str = Field(max_length=2048, examples=["https://api.example.com/availability"])
    method: str = "POST"
    headers: HeaderMap = Field(default_factory=dict)
    secret_headers: HeaderMap = Field(default_factory=dict, repr=False)
    timeout_seconds: float = Field(default=5.0, ge=0.5, le=30)
    retries: int = Field(default=0, ge=0, le=3)
    agent_ids: list[str] | None = Field(default=None, max_length=500)
    wait_message: str = Field(default=DEFAULT_WAIT_MESSAGE, max_length=300)

    @field_validator("name")
    @classmethod
    def _not_builtin(cls, value: str) -> str:
        if value in BUILTIN_FUNCTIONS:
            raise ValueError(f"{value!r} is a built-in function of every call")
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        try:
            parse_url(value)
        except InvalidInput as exc:
            raise ValueError(exc.message) from exc
        return value

    @field_validator("method")
    @classmethod
    def _allowed_method(cls, value: str) -> str:
        if value.upper() not in ALLOWED_METHODS:
            raise ValueError(f"must be one of {', '.join(sorted(ALLOWED_METHODS))}")
        return value.upper()

    @field_validator("secret_headers")
    @classmethod
    def _not_also_plain(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        """One name, one value: a header is either plain or secret, never both."""
        plain = {name.lower() for name in info.data.get("headers", {})}
        if both := sorted(name for name in value if name.lower() in plain):
            raise ValueError(f"header(s) {both} are also plain headers")
        return value

    @field_validator("agent_ids")
    @classmethod
    def _unique(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else list(dict.fromkeys(value))


class ToolPatch(BaseModel):
    """Only the fields sent change; the merged result is checked as a ``ToolConfig``.

    ``secret_headers`` replaces the whole set; ``agent_ids: null`` opens the
    tool to every agent of the workspace.
    """

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None
    url: str | None = None
    method: str | None = None
    headers: dict[str, str] | None = None
    secret_headers: dict[str, str] | None = Field(default=None, repr=False)
    timeout_seconds: float | None = None
    retries: int | None = None
    agent_ids: list[str] | None = None
    wait_message: str | None = None


class ToolOut(BaseModel):
    """A tool as the API shows it: secret header names, never their values."""

    id: str
    name: str
    description: str
    parameters: dict[str, Any]
    url: str
    method: str
    headers: dict[str, str]
    secret_header_names: list[str]
    timeout_seconds: float
    retries: int
    agent_ids: list[str] | None
    wait_message: str
    created_at: datetime
    updated_at: datetime


_HOST_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")


def normalise_private_host(entry: str) -> str:
    """A hostname or IP literal, lowercased, as :class:`AddressPolicy` compares them."""
    value = entry.strip().strip("[]").rstrip(".").lower()
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    labels = value.split(".")
    valid = all(_HOST_LABEL.fullmatch(label) for label in labels) and len(value) <= 253
    if not valid or labels[-1].isdigit():  # a numeric last label is a malformed address
        raise ValueError(f"{entry!r} is not a hostname or an IP address")
    return value


def allowable_private_host(value: str) -> str:
    """Refuse what no workspace may open: link-local and cloud-metadata hosts."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        if value in METADATA_HOSTNAMES:
            raise ValueError(
                f"{value!r} is a cloud metadata service; it cannot be allowed"
            ) from None
        return value
    if never_allowed(address):
        raise ValueError(
            f"{value!r} is link-local or a cloud metadata address; it cannot be allowed"
        )
    return value


PrivateHost = Annotated[
    str, AfterValidator(normalise_private_host), AfterValidator(allowable_private_host)
]


class WorkspacePolicyPatch(BaseModel):
    """Only the fields sent change; a field may be left out but not set to null."""

    model_config = ConfigDict(extra="forbid")

    allowed_private_hosts: list[PrivateHost] | None = Field(
        default=None,
        max_length=MAX_ALLOWED_PRIVATE_HOSTS,
        description="hosts webhook tools and provider endpoints may reach even though they"
        " resolve to private addresses (never link-local or cloud metadata)",
        examples=[["tools.internal", "10.0.0.5"]],
    )
    max_concurrent_calls: int | None = Field(
        default=None,
        ge=1,
        le=MAX_WORKSPACE_CALLS,
        strict=True,
        description="live calls the workspace may have at once (owner only)",
    )

    @field_validator("allowed_private_hosts", "max_concurrent_calls")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("leave the field out to keep it; it cannot be null")
        return value

    @field_validator("allowed_private_hosts")
    @classmethod
    def _deduplicated(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class SigningSecretOut(BaseModel):
    signing_secret: str = Field(description="shown this once; give it to your webhook receivers")
    header: str = SIGNATURE_HEADER
