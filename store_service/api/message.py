from __future__ import annotations

from typing import Any

from cw.store.v1 import message_pb2, message_pb2_grpc
from store_service.api.crud import Resource, ResourceServicer
from store_service.db.models import Message

MESSAGE = Resource(Message, message_pb2.Message, "message", lambda uow: uow.messages)


class MessageServicer(ResourceServicer[message_pb2.Message], message_pb2_grpc.MessageServiceServicer):
    resource = MESSAGE
    # A person's reply answers its parent: store_service/writes/changes.py.
    CreateMessage = ResourceServicer.create_rpc
    GetMessage = ResourceServicer.get_rpc
    UpdateMessage = ResourceServicer.update_rpc
    DeleteMessage = ResourceServicer.delete_rpc

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
