from __future__ import annotations

from store_service.db.models import Message
from store_service.repositories.sqlalchemy.base import SqlAlchemyRepository


class SqlAlchemyMessageRepository(SqlAlchemyRepository[Message]):
    model = Message

    def find_pending_for_user(self) -> list[Message]:
        return self.find_where(Message.recipient_type == "user", Message.status == "pending")

    def find_requiring_response(self) -> list[Message]:
        return self.find_where(Message.requires_response.is_(True), Message.status == "pending")

    def find_replies(self, parent_message_id: str) -> list[Message]:
        return self.find_where(Message.parent_message_id == parent_message_id)
