from __future__ import annotations

from typing import Any

from cw.store.v1 import conversation_pb2, conversation_pb2_grpc
from store_service.api.crud import Resource, ResourceServicer, required_id
from store_service.db.models import Conversation
from store_service.writes import changes

CONVERSATION = Resource(Conversation, conversation_pb2.Conversation, "conversation", lambda uow: uow.conversations)


class ConversationServicer(
    ResourceServicer[conversation_pb2.Conversation], conversation_pb2_grpc.ConversationServiceServicer
):
    resource = CONVERSATION
    CreateConversation = ResourceServicer.create_rpc
    GetConversation = ResourceServicer.get_rpc

    async def ListPendingConversations(
        self, request: Any, _context: Any
    ) -> conversation_pb2.ListPendingConversationsResponse:
        required_id(request.to_agent_id, "to_agent_id")
        conversations, token = await self.list_page(request, ["to_agent_id"], extra_filters={"status": "pending"})
        return conversation_pb2.ListPendingConversationsResponse(conversations=conversations, next_page_token=token)

    async def ListConversations(self, request: Any, _context: Any) -> conversation_pb2.ListConversationsResponse:
        conversations, token = await self.list_page(
            request, ["initiative_id", "from_agent_id", "to_agent_id", "status"]
        )
        return conversation_pb2.ListConversationsResponse(conversations=conversations, next_page_token=token)

    async def AnswerConversation(self, request: Any, _context: Any) -> conversation_pb2.Conversation:
        conversation_id = required_id(request.id)
        return await self.db.write(
            lambda uow: CONVERSATION.to_message(changes.answer_conversation(uow, conversation_id, request.answer))
        )
