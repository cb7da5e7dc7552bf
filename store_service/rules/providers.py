"""The provider a task or initiative names, its initiative's fallback list and an account's cap,
checked as written (by whichever RPC: a Create, an Update, AppendEvent's changes), so a bad name
is INVALID_ARGUMENT naming its field, never stored (rules in store_service/domain/rules.py)."""

from __future__ import annotations

from typing import Any

from store_service.domain import rules
from store_service.domain.errors import FieldViolation, InvalidArgument


def check(resource: str, values: dict[str, Any]) -> None:
    """Raises InvalidArgument for a bad `provider`, `fallback_providers` or `max_concurrent_agents`
    among `values` (stored values: None is unset)."""
    violations: list[FieldViolation] = []
    provider = values.get("provider")
    if provider is not None and (problem := rules.provider_name_problem(provider)):
        violations.append(FieldViolation(f"{resource}.provider", problem))
    for index, problem in rules.fallback_providers_problems(values.get("fallback_providers") or []):
        where = "" if index is None else f"[{index}]"
        violations.append(FieldViolation(f"{resource}.fallback_providers{where}", problem))
    cap = values.get("max_concurrent_agents")
    if cap is not None and (problem := rules.max_concurrent_agents_problem(cap)):
        violations.append(FieldViolation(f"{resource}.max_concurrent_agents", problem))
    if violations:
        raise InvalidArgument(violations)
