from __future__ import annotations

from store_service.db.models import Conversation
from store_service.domain.errors import FailedPrecondition
from store_service.repositories.sqlalchemy.base import SqlAlchemyRepository


class SqlAlchemyConversationRepository(SqlAlchemyRepository[Conversation]):
    model = Conversation

    def find_pending_for_agent(self, to_agent_id: str) -> list[Conversation]:
        return self.find_where(Conversation.to_agent_id == to_agent_id, Conversation.status == "pending")

    def answer(self, conversation_id: str, answer: str) -> Conversation:
        conversation = self.get(conversation_id)
        if conversation.status == "answered":
            raise FailedPrecondition(f"conversation {conversation_id!r} is already answered", "ALREADY_ANSWERED")
        return self.update(conversation_id, answer=answer, status="answered")
