"""What a Create, an Update, an answer or a resolve does in its transaction, for every RPC that
makes one: CreateTask and AppendEvent's `create_task` alike run `create` below.

The order is the same for every write: the rules that read the stored row (preconditions, the
caller's rights, the live agents working on it) come before anything changes; then the resource's
own steps (`HOOKS`: a merged phase reopened, dependency edges, a replied message answered); the
repositories check the rows' consistency and the commit their progress invariants
(store_service/rules/).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from google.protobuf.message import Message

from cw_edge.tokens import Identity
from store_service.db.models import Base
from store_service.domain.errors import InvalidArgument
from store_service.repositories.unit_of_work import SqlAlchemyUnitOfWork
from store_service.rules import idempotency, in_use, permissions, preconditions
from store_service.rules.preconditions import Preconditions
from store_service.services import plan


class Written(Protocol):
    """A resource as the write path needs it (api/crud.py's Resource)."""

    @property
    def message(self) -> type[Message]: ...

    @property
    def field(self) -> str: ...

    @property
    def repository(self) -> Callable[[SqlAlchemyUnitOfWork], Any]: ...


# A step of a resource's write: given the request and the values (before) or the new row (after).
Before = Callable[[SqlAlchemyUnitOfWork, Any, dict[str, Any]], None]
After = Callable[[SqlAlchemyUnitOfWork, Any, Any], None]


@dataclass(frozen=True)
class Hooks:
    """A resource's own steps inside its writes' transaction."""

    before_create: Before | None = None
    after_create: After | None = None
    before_update: Before | None = None


def _reopen_phase(uow: SqlAlchemyUnitOfWork, request: Any, values: dict[str, Any]) -> None:
    """With `reopen_phase`, the task's phase reopens (if it is COMPLETED) before the task joins it."""
    if request.reopen_phase:
        plan.reopen_phase(uow, values.get("phase_id"))


def _task_dependencies(uow: SqlAlchemyUnitOfWork, request: Any, row: Any) -> None:
    if request.depends_on_task_ids:
        plan.add_dependencies(uow.tasks, "task", row.id, list(request.depends_on_task_ids), "depends_on_task_ids")


def _phase_dependencies(uow: SqlAlchemyUnitOfWork, request: Any, row: Any) -> None:
    if request.depends_on_phase_ids:
        plan.add_dependencies(uow.phases, "phase", row.id, list(request.depends_on_phase_ids), "depends_on_phase_ids")


def _answer_parent(uow: SqlAlchemyUnitOfWork, _request: Any, row: Any) -> None:
    """A person's reply answers the message it replies to: RESPONDED, in the reply's transaction."""
    if row.parent_message_id and row.sender_type == "user":
        uow.messages.update(row.parent_message_id, status="responded")


def _credentials_clear_refusal(_uow: SqlAlchemyUnitOfWork, _request: Any, values: dict[str, Any]) -> None:
    """New credentials are worth a try: an update that sets them clears the refusal's reason."""
    if values.get("credentials") and "unusable_reason" not in values:
        values["unusable_reason"] = None


# Keyed by the request field that carries the resource (`task` in CreateTaskRequest).
HOOKS: dict[str, Hooks] = {
    "task": Hooks(before_create=_reopen_phase, after_create=_task_dependencies, before_update=_reopen_phase),
    "phase": Hooks(after_create=_phase_dependencies),
    "message": Hooks(after_create=_answer_parent),
    "account": Hooks(before_update=_credentials_clear_refusal),
}
_NO_HOOKS = Hooks()


@dataclass(frozen=True)
class Create:
    """A Create request, read and validated before its transaction (api/crud.py's read_create)."""

    resource: Written
    request: Any
    values: dict[str, Any]

    def apply(self, uow: SqlAlchemyUnitOfWork, identity: Identity | None) -> Base:
        """The row the request creates; or, when its request_id made one before, that one."""
        resource, request, values = self.resource, self.request, self.values
        permissions.check_write(identity, resource.message, resource.field, values)
        repository = resource.repository(uow)
        earlier = idempotency.earlier_result(uow.session, request)
        if earlier is not None:
            found: Base = repository.get(earlier)
            return found
        hooks = HOOKS.get(resource.field, _NO_HOOKS)
        if hooks.before_create is not None:
            hooks.before_create(uow, request, values)
        row: Base = repository.create(**values)
        if hooks.after_create is not None:
            hooks.after_create(uow, request, row)
        idempotency.remember(uow.session, request, row.id)  # type: ignore[attr-defined]
        return row


@dataclass(frozen=True)
class Update:
    """An Update request, read and validated before its transaction (api/crud.py's read_update)."""

    resource: Written
    request: Any
    row_id: str
    values: dict[str, Any]
    expected: Preconditions

    def apply(self, uow: SqlAlchemyUnitOfWork, identity: Identity | None) -> Base:
        """The stored row, checked against the preconditions and the caller's rights, then changed."""
        resource = self.resource
        repository = resource.repository(uow)
        stored = repository.get(self.row_id)
        preconditions.check(repository.resource, resource.message, stored, self.expected)
        permissions.check_write(identity, resource.message, resource.field, self.values, stored)
        if identity is not Identity.ORCHESTRATOR:
            in_use.check(uow.session, resource.field, self.row_id)
        hooks = HOOKS.get(resource.field, _NO_HOOKS)
        if hooks.before_update is not None:
            hooks.before_update(uow, self.request, self.values)
        row: Base = repository.update(self.row_id, **self.values)
        return row


def answer_conversation(uow: SqlAlchemyUnitOfWork, conversation_id: str, answer: str, where: str = "") -> Base:
    if not answer:
        raise InvalidArgument.of(f"{where}answer", "is required")
    answered: Base = uow.conversations.answer(conversation_id, answer)
    return answered


def resolve_review_comment(uow: SqlAlchemyUnitOfWork, comment_id: str, resolved: bool = True) -> Base:
    repository = uow.review_comments
    row: Base = repository.resolve(comment_id) if resolved else repository.unresolve(comment_id)
    return row
