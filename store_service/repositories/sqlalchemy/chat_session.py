from __future__ import annotations

from typing import Any

from store_service.db.models import ChangeSet, ChatMessage, ChatSession
from store_service.repositories.sqlalchemy.base import SqlAlchemyRepository


class _ChatMessages(SqlAlchemyRepository[ChatMessage]):
    model = ChatMessage


class _ChangeSets(SqlAlchemyRepository[ChangeSet]):
    model = ChangeSet


class SqlAlchemyChatSessionRepository(SqlAlchemyRepository[ChatSession]):
    """Sessions, with their messages and change sets, which only exist within a session."""

    model = ChatSession

    def create_session(self, **values: Any) -> ChatSession:
        return self.create(**values)

    def find_active_session(self, target_type: str, target_id: str) -> ChatSession | None:
        found = self.find_where(
            ChatSession.target_type == target_type,
            ChatSession.target_id == target_id,
            ChatSession.status == "active",
        )
        return found[-1] if found else None

    def find_active_session_by_agent_id(self, agent_id: str) -> ChatSession | None:
        found = self.find_where(ChatSession.agent_id == agent_id, ChatSession.status == "active")
        return found[-1] if found else None

    def update_session(self, session_id: str, **values: Any) -> ChatSession:
        return self.update(session_id, **values)

    def create_message(self, **values: Any) -> ChatMessage:
        return _ChatMessages(self.session).create(**values)

    def find_messages_by_session_id(self, session_id: str) -> list[ChatMessage]:
        return _ChatMessages(self.session).find_where(ChatMessage.chat_session_id == session_id)

    def create_change_set(self, **values: Any) -> ChangeSet:
        return _ChangeSets(self.session).create(**values)

    def get_change_set(self, change_set_id: str) -> ChangeSet:
        return self.change_sets.get(change_set_id)

    @property
    def messages(self) -> _ChatMessages:
        return _ChatMessages(self.session)

    @property
    def change_sets(self) -> _ChangeSets:
        return _ChangeSets(self.session)
