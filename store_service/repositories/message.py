from typing import Protocol

from store_service.db.models import Message
from store_service.repositories.base import Repository


class MessageRepository(Repository[Message], Protocol):
    def find_pending_for_user(self) -> list[Message]: ...

    def find_requiring_response(self) -> list[Message]: ...

    def find_replies(self, parent_message_id: str) -> list[Message]: ...
