from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from cw.store.v1 import chat_session_pb2, chat_session_pb2_grpc
from cw_edge.interceptor import current_identity
from store_service.api import convert, limits, validation
from store_service.api.crud import Resource, ResourceServicer, required_id
from store_service.api.page import PAGE
from store_service.api.phase import PHASE, PHASE_DEPENDENCY
from store_service.api.task import TASK, TASK_DEPENDENCY
from store_service.db.models import ChangeSet, ChatMessage, ChatSession
from store_service.domain.errors import InvalidArgument, NotFound
from store_service.repositories.unit_of_work import SqlAlchemyUnitOfWork
from store_service.rules import permissions
from store_service.services import change_sets

CHAT_SESSION = Resource(ChatSession, chat_session_pb2.ChatSession, "chat_session", lambda uow: uow.chat_sessions)
CHAT_MESSAGE = Resource(
    ChatMessage, chat_session_pb2.ChatMessage, "chat_message", lambda uow: uow.chat_sessions.messages
)
ENTITY_RESOURCES: dict[str, Resource[Any]] = {
    "page": PAGE,
    "phase": PHASE,
    "task": TASK,
    "phase_dependency": PHASE_DEPENDENCY,
    "task_dependency": TASK_DEPENDENCY,
}


class _ChangeSetResource(Resource[chat_session_pb2.ChangeSet]):
    def to_message(self, row: Any) -> chat_session_pb2.ChangeSet:
        return change_set_message(row)


def _entity_struct(entity_type: str, values: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stored snapshot, shown in the entity message's JSON form."""
    if values is None:
        return None
    resource = ENTITY_RESOURCES[entity_type]
    row = resource.model(**change_sets.restore(resource.model, values))
    return json_format.MessageToDict(resource.to_message(row))


def change_set_message(row: ChangeSet) -> chat_session_pb2.ChangeSet:
    message = convert.to_message(row, chat_session_pb2.ChangeSet)
    for entry in row.entries:
        shown = message.entries.add(
            entity_type=convert.enum_from_db(chat_session_pb2.ChangeEntityType.DESCRIPTOR, entry["entity_type"]),
            entity_id=entry["entity_id"],
            action=convert.enum_from_db(chat_session_pb2.ChangeAction.DESCRIPTOR, entry["action"]),
        )
        for side in ("before", "after"):
            values = _entity_struct(entry["entity_type"], entry[side])
            if values is not None:
                getattr(shown, side).update(values)
    return message


CHANGE_SET = _ChangeSetResource(
    ChangeSet, chat_session_pb2.ChangeSet, "change_set", lambda uow: uow.chat_sessions.change_sets
)


def _requested_change(index: int, entry: chat_session_pb2.ChangeSetEntry) -> change_sets.Change:
    path = f"changes[{index}]"
    entity_type = convert.enum_to_db(chat_session_pb2.ChangeEntityType.DESCRIPTOR, entry.entity_type)
    action = convert.enum_to_db(chat_session_pb2.ChangeAction.DESCRIPTOR, entry.action)
    if entity_type is None or action is None:
        raise InvalidArgument.of(path, "entity_type and action are required")
    resource = ENTITY_RESOURCES[entity_type]
    try:
        fields = json_format.ParseDict(json_format.MessageToDict(entry.after), resource.message())
    except json_format.ParseError as error:
        raise InvalidArgument.of(f"{path}.after", str(error)) from error
    validation.check_message(fields, f"{path}.after")
    values: dict[str, Any] = {}
    if action == "create":
        values = convert.values_for_create(fields, resource.model, f"{path}.after")
    elif action == "update":
        descriptor = resource.message.DESCRIPTOR
        named = [
            (descriptor.fields_by_camelcase_name.get(key) or descriptor.fields_by_name.get(key))
            for key in entry.after.fields
        ]
        paths = [field.name for field in named if field is not None]
        if not paths:
            raise InvalidArgument.of(f"{path}.after", "must name the fields to change")
        values = convert.values_for_update(fields, resource.model, f"{path}.after", paths)
    return change_sets.Change(entity_type, action, entry.entity_id or None, values)


class ChatSessionServicer(
    ResourceServicer[chat_session_pb2.ChatSession], chat_session_pb2_grpc.ChatSessionServiceServicer
):
    resource = CHAT_SESSION
    CreateChatSession = ResourceServicer.create_rpc
    GetChatSession = ResourceServicer.get_rpc
    UpdateChatSession = ResourceServicer.update_rpc

    async def GetActiveChatSession(self, request: Any, _context: Any) -> chat_session_pb2.ChatSession:
        target_type = convert.enum_to_db(chat_session_pb2.ChatTargetType.DESCRIPTOR, request.target_type)
        if target_type is None:
            raise InvalidArgument.of("target_type", "is required")
        target_id = required_id(request.target_id, "target_id")

        def work(uow: SqlAlchemyUnitOfWork) -> chat_session_pb2.ChatSession:
            found = uow.chat_sessions.find_active_session(target_type, target_id)
            if found is None:
                raise NotFound(f"active chat session of {target_type}", target_id)
            return CHAT_SESSION.to_message(found)

        return await self.db.read(work)

    async def GetActiveChatSessionByAgent(self, request: Any, _context: Any) -> chat_session_pb2.ChatSession:
        agent_id = required_id(request.agent_id, "agent_id")

        def work(uow: SqlAlchemyUnitOfWork) -> chat_session_pb2.ChatSession:
            found = uow.chat_sessions.find_active_session_by_agent_id(agent_id)
            if found is None:
                raise NotFound("active chat session of agent", agent_id)
            return CHAT_SESSION.to_message(found)

        return await self.db.read(work)

    async def CreateChatMessage(self, request: Any, _context: Any) -> chat_session_pb2.ChatMessage:
        values = convert.values_for_create(request.chat_message, ChatMessage, "chat_message")
        return await self.create_with(request, lambda uow: uow.chat_sessions.create_message(**values), CHAT_MESSAGE)

    async def ListChatMessages(self, request: Any, _context: Any) -> chat_session_pb2.ListChatMessagesResponse:
        required_id(request.chat_session_id, "chat_session_id")
        messages, token = await self.list_page(request, ["chat_session_id"], CHAT_MESSAGE)
        return chat_session_pb2.ListChatMessagesResponse(chat_messages=messages, next_page_token=token)

    async def ApplyChangeSet(self, request: Any, _context: Any) -> chat_session_pb2.ChangeSet:
        session_id = required_id(request.chat_session_id, "chat_session_id")
        changes = [_requested_change(index, entry) for index, entry in enumerate(request.changes)]
        identity = current_identity()

        def make(uow: SqlAlchemyUnitOfWork) -> ChangeSet:
            for index, change in enumerate(changes):
                resource = ENTITY_RESOURCES[change.entity_type]
                updated = change.entity_id if change.action == "update" else None
                stored = resource.repository(uow).find_by_id(updated) if updated else None
                permissions.check_write(identity, resource.message, f"changes[{index}].after", change.values, stored)
            row = change_sets.apply_change_set(uow, session_id, request.summary or None, changes)
            size = change_set_message(row).ByteSize()
            if size > limits.CHANGE_SET.size:
                raise InvalidArgument.of(
                    "changes",
                    f"would record {size} bytes of states before and after; at most "
                    f"{limits.CHANGE_SET.describe()}: split the change set",
                )
            return row

        return await self.create_with(request, make, CHANGE_SET)

    async def GetChangeSet(self, request: Any, _context: Any) -> chat_session_pb2.ChangeSet:
        change_set_id = required_id(request.id)
        return await self.db.read(lambda uow: change_set_message(uow.chat_sessions.get_change_set(change_set_id)))

    async def ListChangeSets(self, request: Any, _context: Any) -> chat_session_pb2.ListChangeSetsResponse:
        required_id(request.chat_session_id, "chat_session_id")
        listed, token = await self.list_page(request, ["chat_session_id"], CHANGE_SET)
        return chat_session_pb2.ListChangeSetsResponse(change_sets=listed, next_page_token=token)

    async def RevertChangeSet(self, request: Any, _context: Any) -> chat_session_pb2.ChangeSet:
        change_set_id = required_id(request.id)
        return await self.db.write(lambda uow: change_set_message(change_sets.revert_change_set(uow, change_set_id)))
