"""Running what a workspace writes: JSON Schemas for function arguments, and regular expressions.

The workspace writes the schema; the LLM, steered by a caller's words, writes
the values checked against it. So checking them must neither reach the
network nor take more than linear time, whatever either side sends:

- References resolve inside the schema only. Without a registry of its own,
  jsonschema (>= 4.18) fetches any other URI over urllib, from our network and
  at the caller's cue; ours retrieves nothing, so such a reference fails the
  arguments. Saving refuses one that is not local (``#...``) in the first place.
- ``pattern`` and ``patternProperties`` (and ``additionalProperties``, which
  consults them) run on RE2, which matches in time linear in the text and
  refuses outright what it cannot match that way (backreferences, lookaround):
  a pattern is refused once, when it is saved. A time limit on Python's ``re``
  would not do: a match holds the GIL and cannot be cancelled, so bounding it
  needs a thread (which stalls the event loop anyway) or a process per match,
  and even then burns the limit's worth of CPU on every call. jsonschema's
  ``unevaluatedProperties`` matches ``patternProperties`` with ``re`` deep in
  its internals, so a schema may not use the two together.
- Every part of a schema is checked as JSON Schema 2020-12 by the class here:
  jsonschema would hand a subschema naming another ``$schema`` to a stock
  class and its backtracking ``re``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import re2  # type: ignore[import-untyped]
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import Draft202012Validator, extend
from referencing import Registry
from referencing.exceptions import Unresolvable

if TYPE_CHECKING:
    # How jsonschema's stubs type any validator class that ``extend`` makes.
    from jsonschema.validators import _Validator as KeywordValidator

# Keywords that point at another schema, in any draft.
_REFERENCES = frozenset({"$ref", "$dynamicRef", "$recursiveRef"})


class UnusablePattern(ValueError):
    """A regular expression RE2 will not run (not linear-time, or not a pattern at all)."""


class RegexMatch(Protocol):
    def group(self, index: int = 0, /) -> str | None: ...
    def groups(self) -> tuple[str | None, ...]: ...


class Regex(Protocol):
    def search(self, text: str) -> RegexMatch | None: ...


def compile_pattern(pattern: str, *, ignore_case: bool = False) -> Regex:
    """``pattern`` compiled by RE2 (compiled patterns are cached by the ``re2`` module).

    Raises:
        UnusablePattern: RE2 refuses it, with RE2's reason.
    """
    options = re2.Options()
    options.log_errors = False  # the refusal is ours to report, not RE2's to print
    options.case_sensitive = not ignore_case
    try:
        compiled: Regex = re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise UnusablePattern(
            f"{pattern!r} cannot run on RE2 ({reason}); patterns may not use backreferences"
            " or lookaround, which cannot be matched in linear time"
        ) from exc
    return compiled


# --- the validator ----------------------------------------------------------------------


def _pattern(
    validator: KeywordValidator, pattern: str, instance: Any, _schema: Any
) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not compile_pattern(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: KeywordValidator, patterns: dict[str, Any], instance: Any, _schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        regex = compile_pattern(pattern)
        for name, value in instance.items():
            if regex.search(name):
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)


def _additional_properties(
    validator: KeywordValidator, additional: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    declared = schema.get("properties", {})
    patterns = [compile_pattern(pattern) for pattern in schema.get("patternProperties", {})]
    extras = [
        name
        for name in instance
        if name not in declared and not any(regex.search(name) for regex in patterns)
    ]
    if validator.is_type(additional, "object"):
        for name in extras:
            yield from validator.descend(instance[name], additional, path=name)
    elif additional is False and extras:
        names = ", ".join(repr(name) for name in sorted(extras))
        verb = "was" if len(extras) == 1 else "were"
        yield ValidationError(f"Additional properties are not allowed ({names} {verb} unexpected)")


_TenantValidator: Any = extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    },
)
_stock_evolve = _TenantValidator.evolve


def _evolve_as_2020_12(self: Validator, **changes: Any) -> Validator:
    """Descend into a subschema with this class, whatever ``$schema`` the subschema names."""
    schema = changes.get("schema", self.schema)
    if isinstance(schema, Mapping) and "$schema" in schema:
        changes["schema"] = {key: value for key, value in schema.items() if key != "$schema"}
    evolved: Validator = _stock_evolve(self, **changes)
    return evolved


_TenantValidator.evolve = _evolve_as_2020_12
# Retrieves nothing: a URI that is not part of the schema (or a JSON Schema meta-schema,
# which jsonschema always knows) is unresolvable.
_LOCAL_ONLY: Registry[Any] = Registry()


# --- what the rest of the code calls ---------------------------------------------------------


def tenant_validator(schema: Mapping[str, Any]) -> Validator:
    """The one way to build a validator for a workspace's schema (see the module's notes).

    Raises:
        UnusablePattern: the schema uses ``unevaluatedProperties`` and
            ``patternProperties`` together.
    """
    if _has_key(schema, "unevaluatedProperties") and _has_key(schema, "patternProperties"):
        raise UnusablePattern(
            "unevaluatedProperties cannot be used with patternProperties, whose patterns it"
            " would match outside RE2; use additionalProperties instead"
        )
    validator: Validator = _TenantValidator(schema, registry=_LOCAL_ONLY)
    return validator


def check_tenant_schema(schema: Mapping[str, Any]) -> None:
    """Refuse a schema that is not JSON Schema 2020-12 or that could fetch or backtrack.

    References and patterns are found by walking every mapping in the schema, not
    just its subschemas: simpler than knowing every keyword, and a reference-like
    value under ``const`` or ``enum`` is refused too rather than missed.

    Raises:
        ValueError: saying what is wrong and where ("properties.day.$ref: ...").
    """
    try:
        _TenantValidator.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"not a valid JSON Schema: {exc.message}") from exc
    problem = next(_walk_problems(schema, ()), None)
    if problem is not None:
        raise ValueError(problem)
    tenant_validator(schema)


def instance_problem(schema: Mapping[str, Any], instance: Any) -> str | None:
    """Why ``instance`` does not fit the workspace's ``schema`` (path and reason), or None.

    A schema stored before (or behind) :func:`check_tenant_schema` may still
    refer elsewhere or hold a pattern RE2 refuses: then nothing is fetched or
    backtracked, and the reason is the problem.
    """
    try:
        tenant_validator(schema).validate(instance)
    except ValidationError as exc:
        where = ".".join(str(part) for part in exc.absolute_path)
        return f"{where}: {exc.message}" if where else exc.message
    except (Unresolvable, UnusablePattern) as exc:
        return f"the parameter schema cannot be used: {exc}"
    return None


def _walk_problems(node: Any, path: tuple[str, ...]) -> Iterator[str]:
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from _walk_problems(item, (*path, str(i)))
        return
    if not isinstance(node, Mapping):
        return
    for key, value in node.items():
        where = ".".join((*path, key))
        if key in _REFERENCES and isinstance(value, str) and not value.startswith("#"):
            yield (
                f"{where}: {value!r} is not a reference within this schema; only '#...'"
                " references are allowed, since nothing is fetched"
            )
        elif key == "pattern" and isinstance(value, str):
            yield from _pattern_problem(where, value)
        elif key == "patternProperties" and isinstance(value, Mapping):
            for pattern in value:
                yield from _pattern_problem(where, pattern)
        yield from _walk_problems(value, (*path, key))


def _has_key(node: Any, key: str) -> bool:
    if isinstance(node, list):
        return any(_has_key(item, key) for item in node)
    if isinstance(node, Mapping):
        return key in node or any(_has_key(value, key) for value in node.values())
    return False


def _pattern_problem(where: str, pattern: str) -> Iterator[str]:
    try:
        compile_pattern(pattern)
    except UnusablePattern as exc:
        yield f"{where}: {exc}"
