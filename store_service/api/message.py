from __future__ import annotations

from typing import Any

from cw.store.v1 import message_pb2, message_pb2_grpc
from store_service.api.crud import Resource, ResourceServicer
from store_service.db.models import Message
from store_service.db.unit_of_work import SqlAlchemyUnitOfWork

MESSAGE = Resource(Message, message_pb2.Message, "message", lambda uow: uow.messages)


def answer_parent(uow: SqlAlchemyUnitOfWork, row: Message) -> None:
    """A person's reply answers the message it replies to: RESPONDED, in the reply's transaction."""
    if row.parent_message_id and row.sender_type == "user":
        uow.messages.update(row.parent_message_id, status="responded")


class MessageServicer(ResourceServicer[message_pb2.Message], message_pb2_grpc.MessageServiceServicer):
    resource = MESSAGE
    GetMessage = ResourceServicer.get_rpc
    UpdateMessage = ResourceServicer.update_rpc
    DeleteMessage = ResourceServicer.delete_rpc

    async def CreateMessage(self, request: Any, _context: Any) -> message_pb2.Message:
        return await self.create_then(request, after=answer_parent)

    async def ListMessages(self, request: Any, _context: Any) -> message_pb2.ListMessagesResponse:
        # The named finders of the original are fixed filter sets over the same listing.
        extra: dict[str, Any] = {}
        if request.pending_for_user:
            extra.update(recipient_type="user", status="pending")
        if request.requiring_response:
            extra.update(requires_response=True, status="pending")
        messages, token = await self.list_page(
            request, ["parent_message_id", "sender_id", "recipient_id"], extra_filters=extra
        )
        return message_pb2.ListMessagesResponse(messages=messages, next_page_token=token)
