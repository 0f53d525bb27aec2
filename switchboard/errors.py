"""Every error Switchboard raises on purpose.

The tree::

    SwitchboardError
    ├── NotFound                 a resource is absent, or belongs to another workspace
    ├── Conflict                 a unique value is taken (a phone number, a name)
    ├── InvalidInput             a value breaks a rule the schema cannot express
    ├── AuthError
    │   ├── Unauthenticated      no key, an unknown key, a revoked key
    │   └── Forbidden            the key's role may not do this
    ├── ConfigurationError       the server's own settings are wrong
    └── ExternalError            a carrier, provider or webhook failed; ``retryable``
        ├── ExternalTimeout      retryable
        └── ExternalStatusError  retryable for 408, 429 and 5xx

HTTP statuses for these are chosen in ``switchboard.api.problems`` only.
"""

from __future__ import annotations


class SwitchboardError(Exception):
    """Base of the tree; ``field`` names the input at fault, when there is one."""

    retryable: bool = False

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(SwitchboardError):
    """Absent, or not visible to this workspace: both look the same so ids do not leak."""

    def __init__(self, kind: str, ident: str | None = None, *, field: str | None = None) -> None:
        what = f"{kind} {ident!r}" if ident is not None else kind
        super().__init__(f"{what} not found", field=field)
        self.kind = kind


class Conflict(SwitchboardError):
    """A unique value is already taken."""


class InvalidInput(SwitchboardError):
    """Input that parses but breaks a rule (an unknown provider, a bad time zone)."""


class AuthError(SwitchboardError):
    """Authentication or authorisation failed."""


class Unauthenticated(AuthError):
    """No usable credentials."""


class Forbidden(AuthError):
    """Credentials are valid but the role does not allow the action."""


class ConfigurationError(SwitchboardError):
    """The server's settings cannot work."""


class ExternalError(SwitchboardError):
    """Something outside the process failed."""

    def __init__(self, message: str, *, retryable: bool = False, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retryable = retryable


class ExternalTimeout(ExternalError):
    """The other side did not answer in time; trying again may help."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class ExternalStatusError(ExternalError):
    """The other side answered with an error status (and, when it gave one, its own code)."""

    def __init__(self, message: str, *, status: int, code: str | None = None) -> None:
        super().__init__(message, retryable=status in (408, 429) or status >= 500)
        self.status = status
        self.code = code
