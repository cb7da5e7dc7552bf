"""The store's planning API with typed methods: pages, planning tasks, proposals, chat sessions.

Mixed into StoreClient (clients/sdk/store.py), which binds the stubs.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

import grpc
from google.protobuf import field_mask_pb2

from clients.sdk.calls import call, enum_value, every_page, request_id
from clients.sdk.errors import NotFoundError
from clients.sdk.lazy import lazy_modules

if TYPE_CHECKING:
    from cw.store.v1 import (
        chat_session_pb2,
        chat_session_pb2_grpc,
        page_pb2,
        page_pb2_grpc,
        proposal_pb2,
        proposal_pb2_grpc,
        task_pb2,
        task_pb2_grpc,
    )
else:
    (
        chat_session_pb2,
        chat_session_pb2_grpc,
        page_pb2,
        page_pb2_grpc,
        proposal_pb2,
        proposal_pb2_grpc,
        task_pb2,
        task_pb2_grpc,
    ) = lazy_modules(
        "cw.store.v1",
        "chat_session_pb2",
        "chat_session_pb2_grpc",
        "page_pb2",
        "page_pb2_grpc",
        "proposal_pb2",
        "proposal_pb2_grpc",
        "task_pb2",
        "task_pb2_grpc",
    )


def chat_target(kind: str) -> chat_session_pb2.ChatTargetType.ValueType:
    """`phase` or `task` as the ChatTargetType the calls take."""
    targets = {"phase": chat_session_pb2.CHAT_TARGET_TYPE_PHASE, "task": chat_session_pb2.CHAT_TARGET_TYPE_TASK}
    return targets[kind]


class PlanningCalls:
    channel: grpc.Channel

    @cached_property
    def tasks(self) -> task_pb2_grpc.TaskServiceStub:
        return task_pb2_grpc.TaskServiceStub(self.channel)

    @cached_property
    def pages(self) -> page_pb2_grpc.PageServiceStub:
        return page_pb2_grpc.PageServiceStub(self.channel)

    @cached_property
    def proposals(self) -> proposal_pb2_grpc.ProposalServiceStub:
        return proposal_pb2_grpc.ProposalServiceStub(self.channel)

    @cached_property
    def chat_sessions(self) -> chat_session_pb2_grpc.ChatSessionServiceStub:
        return chat_session_pb2_grpc.ChatSessionServiceStub(self.channel)

    # ---- pages

    def root_page(self, initiative_id: str) -> page_pb2.Page:
        """The initiative's root page, made now if it has none yet."""
        request = page_pb2.GetOrCreateRootPageRequest(initiative_id=initiative_id)
        return call(self.pages.GetOrCreateRootPage, request)

    def get_page(self, page_id: str) -> page_pb2.Page:
        return call(self.pages.GetPage, page_pb2.GetPageRequest(id=page_id))

    def list_pages(self, initiative_id: str) -> list[page_pb2.Page]:
        return every_page(self.pages.ListPages, page_pb2.ListPagesRequest(initiative_id=initiative_id), "pages")

    def create_page(self, initiative_id: str, title: str, content: str = "", parent_page_id: str = "") -> page_pb2.Page:
        parent = parent_page_id or self.root_page(initiative_id).id
        page = page_pb2.Page(initiative_id=initiative_id, title=title, content=content, parent_page_id=parent)
        return call(self.pages.CreatePage, page_pb2.CreatePageRequest(page=page, request_id=request_id()))

    def set_page_content(self, page_id: str, content: str) -> page_pb2.Page:
        request = page_pb2.UpdatePageRequest(
            page=page_pb2.Page(id=page_id, content=content), update_mask=field_mask_pb2.FieldMask(paths=["content"])
        )
        return call(self.pages.UpdatePage, request)

    # ---- planning tasks

    def create_planning_task(
        self, initiative_id: str, category: str, name: str, description: str = "", target_id: str = ""
    ) -> task_pb2.Task:
        """A task outside any phase whose agent plans (discuss, plan, detail, refine)."""
        task = task_pb2.Task(
            initiative_id=initiative_id,
            name=name[:200],
            description=description,
            category=enum_value(task_pb2.TaskCategory, category),
            target_id=target_id,
        )
        return call(self.tasks.CreateTask, task_pb2.CreateTaskRequest(task=task, request_id=request_id()))

    # ---- proposals

    def list_proposals(
        self, initiative_id: str = "", status: str = "", agent_id: str = ""
    ) -> list[proposal_pb2.Proposal]:
        request = proposal_pb2.ListProposalsRequest(initiative_id=initiative_id, agent_id=agent_id)
        if status:
            request.status = enum_value(proposal_pb2.ProposalStatus, status)
        return every_page(self.proposals.ListProposals, request, "proposals")

    def get_proposal(self, proposal_id: str) -> proposal_pb2.Proposal:
        return call(self.proposals.GetProposal, proposal_pb2.GetProposalRequest(id=proposal_id))

    def accept_proposals(self, proposal_ids: list[str]) -> proposal_pb2.AcceptProposalsResponse:
        return call(self.proposals.AcceptProposals, proposal_pb2.AcceptProposalsRequest(proposal_ids=proposal_ids))

    def dismiss_proposals(self, proposal_ids: list[str]) -> proposal_pb2.DismissProposalsResponse:
        return call(self.proposals.DismissProposals, proposal_pb2.DismissProposalsRequest(proposal_ids=proposal_ids))

    # ---- chat sessions and change sets

    def active_chat(self, kind: str, target_id: str) -> chat_session_pb2.ChatSession | None:
        request = chat_session_pb2.GetActiveChatSessionRequest(target_type=chat_target(kind), target_id=target_id)
        try:
            return call(self.chat_sessions.GetActiveChatSession, request)
        except NotFoundError:
            return None

    def chat_messages(self, session_id: str) -> list[chat_session_pb2.ChatMessage]:
        request = chat_session_pb2.ListChatMessagesRequest(chat_session_id=session_id)
        return every_page(self.chat_sessions.ListChatMessages, request, "chat_messages")

    def change_sets(self, session_id: str) -> list[chat_session_pb2.ChangeSet]:
        request = chat_session_pb2.ListChangeSetsRequest(chat_session_id=session_id)
        return every_page(self.chat_sessions.ListChangeSets, request, "change_sets")

    def get_change_set(self, change_set_id: str) -> chat_session_pb2.ChangeSet:
        return call(self.chat_sessions.GetChangeSet, chat_session_pb2.GetChangeSetRequest(id=change_set_id))

    def revert_change_set(self, change_set_id: str) -> chat_session_pb2.ChangeSet:
        return call(self.chat_sessions.RevertChangeSet, chat_session_pb2.RevertChangeSetRequest(id=change_set_id))

    def close_chat(self, session_id: str) -> chat_session_pb2.ChatSession:
        request = chat_session_pb2.UpdateChatSessionRequest(
            chat_session=chat_session_pb2.ChatSession(
                id=session_id, status=chat_session_pb2.CHAT_SESSION_STATUS_CLOSED
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["status"]),
        )
        return call(self.chat_sessions.UpdateChatSession, request)
