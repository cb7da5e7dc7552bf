"""The standard methods (AIP-131..135) written once, for every resource of the store."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from google.protobuf import empty_pb2
from google.protobuf.message import Message
from sqlalchemy import ColumnElement

from cw_edge.interceptor import current_identity
from cw_edge.tokens import Identity
from store_service.api import convert, pagination
from store_service.api.shown_rows import Shown, ShownRows
from store_service.database import Database
from store_service.db.messages import MESSAGE_OF, PRESENCE, hidden
from store_service.db.models import Base
from store_service.db.reads import Reads, Record
from store_service.db.views import AnyOf, PageCursor, find_filtered_page, find_page
from store_service.domain.errors import InvalidArgument, NotFound
from store_service.repositories.sqlalchemy import inserts
from store_service.repositories.sqlalchemy.base import resource_name
from store_service.repositories.unit_of_work import SqlAlchemyUnitOfWork
from store_service.rules import idempotency, in_use, preconditions
from store_service.writes import changes

MessageT = TypeVar("MessageT", bound=Message)
# The messages of rows listed lately, kept by their stored values (shown_rows.py).
SHOWN_ROWS = ShownRows()
ShownT = TypeVar("ShownT", bound=Message)


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: a key of SHOWN_ROWS
class Resource(Generic[MessageT]):
    model: type[Base]
    message: type[MessageT]
    # The request field that carries the resource: `task` in CreateTaskRequest.
    field: str
    repository: Callable[[SqlAlchemyUnitOfWork], Any]
    # Fields never sent back to a client.
    hidden: frozenset[str] = frozenset()
    # The attribute that orders pages after `create_time`: a lease is keyed by its name.
    key: str = "id"

    def to_message(self, row: Base | Record) -> MessageT:
        """The message of an ORM row or a record (`db/reads.py`) alike; of a row just created, the
        one its created event was made from, when the resource shows rows as events do."""
        if self._shown_as_events and isinstance(row, Base):
            created: Any = inserts.created_message(row)
            if created is not None:
                kept: MessageT = created
                return kept
        return convert.to_message(row, self.message, self.hidden)

    @functools.cached_property
    def _shown_as_events(self) -> bool:
        """This resource's message of a row is the one its events show (db/messages.py)."""
        model = self.model
        return (
            not self.hidden and MESSAGE_OF.get(model) is self.message and not PRESENCE.get(model) and not hidden(model)
        )

    def shower(self, reads: Reads) -> Callable[[tuple[Any, ...]], Shown]:
        """Shows a row as the driver gives it (for `SHOWN_ROWS`)."""
        decode = reads.shape(self.model).decode

        def show(stored: tuple[Any, ...]) -> Shown:
            record = decode(stored)
            message = self.to_message(record)
            return Shown(record, message, message.ByteSize())

        return show


def read_create(resource: Resource[Any], request: Any, where: str = "") -> changes.Create:
    """The Create `request` asks for; `where` locates the request inside a larger one
    (AppendEvent's `changes[0].create_task.`), for the fields its errors name."""
    message = getattr(request, resource.field)
    return changes.Create(
        resource, request, convert.values_for_create(message, resource.model, f"{where}{resource.field}")
    )


def read_update(resource: Resource[Any], request: Any, where: str = "") -> changes.Update:
    """The Update `request` asks for (see read_create)."""
    message = getattr(request, resource.field)
    prefix = f"{where}{resource.field}"
    row_id = required_id(message.id, f"{prefix}.id")
    values = convert.values_for_update(message, resource.model, prefix, list(request.update_mask.paths))
    return changes.Update(resource, request, row_id, values, preconditions.requested(request, where))


def required_id(value: str, name: str = "id") -> str:
    if not value:
        raise InvalidArgument.of(name, "is required")
    return value


# A repeated filter field of List requests -> the column it restricts to a set of values.
SET_FILTERS = {"statuses": "status"}


def request_filters(request: Message, names: list[str]) -> dict[str, Any]:
    """Filters from the set fields of a List request (enums mapped to stored values): equality for
    a single value; a set (`statuses`) restricts its column further, so `status` and `statuses`
    combine by AND."""
    filters: dict[str, Any] = {}
    sets: dict[str, set[Any]] = {}
    for name in names:
        descriptor = request.DESCRIPTOR.fields_by_name[name]
        if descriptor.is_repeated:
            chosen = set(convert.enum_set(request, descriptor, name))
            if chosen:
                sets[SET_FILTERS[name]] = chosen
            continue
        value = convert.field_value(request, descriptor, name)
        if value not in (None, False):
            filters[name] = value
    for column, allowed in sets.items():
        if column in filters:
            allowed &= {filters[column]}
        filters[column] = AnyOf(tuple(sorted(allowed)))
    return filters


class ResourceServicer(Generic[MessageT]):
    resource: ClassVar[Resource[Any]]

    def __init__(self, db: Database) -> None:
        self.db = db
        # The average size of a row on the last page listed, per table (pagination.SizedPage).
        self._row_bytes: dict[type[Base], float] = {}

    def repository(self, uow: SqlAlchemyUnitOfWork) -> Any:
        return self.resource.repository(uow)

    def to_message(self, row: Base | Record) -> MessageT:
        message: MessageT = self.resource.to_message(row)
        return message

    async def create_rpc(self, request: Any, context: Any = None) -> MessageT:
        """The resource's Create (changes.create: the same as AppendEvent's)."""
        create, identity = read_create(self.resource, request), current_identity()
        created: MessageT = await self.db.write(lambda uow: self.to_message(create.apply(uow, identity)))
        return created

    async def create_with(
        self, request: Any, make: Callable[[SqlAlchemyUnitOfWork], Base], shown: Resource[ShownT]
    ) -> ShownT:
        """Runs `make` unless this request_id already made something: then returns that instead.
        `shown` is the resource `make` creates."""

        def work(uow: SqlAlchemyUnitOfWork) -> ShownT:
            earlier = idempotency.earlier_result(uow.session, request)
            if earlier is not None:
                return shown.to_message(shown.repository(uow).get(earlier))
            row = make(uow)
            idempotency.remember(uow.session, request, row.id)  # type: ignore[attr-defined]
            return shown.to_message(row)

        return await self.db.write(work)

    async def get_rpc(self, request: Any, context: Any = None) -> MessageT:
        row_id = required_id(request.id)
        resource = self.resource

        def work(reads: Reads) -> Message | None:
            stored = reads.stored(resource.model, row_id)
            return None if stored is None else SHOWN_ROWS.shown(resource, stored, resource.shower(reads)).message

        kept = await self.db.fetch(work)
        if kept is None:
            raise NotFound(resource_name(resource.model), row_id)
        answer: MessageT = resource.message()
        answer.CopyFrom(kept)  # type: ignore[arg-type]  # the kept message is shared: the caller gets its own
        return answer

    async def update_rpc(self, request: Any, context: Any = None) -> MessageT:
        """The resource's Update (changes.update: the same as AppendEvent's)."""
        update, identity = read_update(self.resource, request), current_identity()
        updated: MessageT = await self.db.write(lambda uow: self.to_message(update.apply(uow, identity)))
        return updated

    async def delete_rpc(self, request: Any, context: Any = None) -> empty_pb2.Empty:
        row_id = required_id(request.id)
        identity = current_identity()

        def work(uow: SqlAlchemyUnitOfWork) -> None:
            if identity is not Identity.ORCHESTRATOR:
                in_use.check(uow.session, self.resource.field, row_id)
            self.repository(uow).delete(row_id)

        await self.db.write(work)
        return empty_pb2.Empty()

    async def list_page(
        self,
        request: Any,
        filter_names: list[str],
        resource: Resource[Any] | None = None,
        extra_filters: dict[str, Any] | None = None,
    ) -> tuple[list[Any], str]:
        """One page of rows matching the request's filters, and the token for the next page."""
        shown = resource or self.resource
        filters = request_filters(request, filter_names) | (extra_filters or {})
        return await self.page_of(request, shown, filters)

    async def page_of(
        self,
        request: Any,
        shown: Resource[Any],
        filters: Mapping[str, Any],
        criteria: Sequence[ColumnElement[bool]] | None = None,
        default_size: int = pagination.DEFAULT_PAGE_SIZE,
    ) -> tuple[list[Any], str]:
        """The paging loop of every list: rows meeting `criteria` (None: those `matching` the
        filters, read with a statement compiled once), with page tokens bound to `filters` (what the
        request asked for)."""
        limit = pagination.page_size(request.page_size, default_size)
        after = pagination.decode_token(request.page_token, filters)

        def work(reads: Reads) -> tuple[list[Any], str]:
            page, cursor = pagination.SizedPage(limit, usual_row_bytes=self._row_bytes.get(shown.model)), after
            show = shown.shower(reads)
            while True:
                wanted = page.rows_to_read()
                if criteria is None:
                    rows = find_filtered_page(reads, shown.model, filters, wanted, cursor)
                else:
                    rows = find_page(reads, shown.model, criteria, wanted, cursor)
                read = SHOWN_ROWS.shown_page(shown, rows, show)
                page.offer_all(read.messages, read.records, read.reach)
                if page.last is not None:
                    cursor = PageCursor(page.last.create_time, getattr(page.last, shown.key))
                if page.more or len(rows) < wanted:
                    break
            if page.messages:
                self._row_bytes[shown.model] = page.average_bytes()
            token = pagination.encode_token(cursor, filters) if page.more and cursor is not None else ""
            return page.messages, token

        return await self.db.fetch(work)
