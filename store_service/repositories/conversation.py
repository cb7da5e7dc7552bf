from typing import Protocol

from store_service.db.models import Conversation
from store_service.repositories.base import Repository


class ConversationRepository(Repository[Conversation], Protocol):
    def find_pending_for_agent(self, to_agent_id: str) -> list[Conversation]: ...

    def answer(self, conversation_id: str, answer: str) -> Conversation:
        """Sets the answer and ANSWERED once; refuses a second answer."""
        ...
