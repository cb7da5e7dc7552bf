"""The store's API for editing the plan and for review: task, phase and project edits, review
comments, conversations, messages and the proposals a person still has to decide on. Mixed into
`StoreClient` (clients/sdk/store.py), which binds the stubs."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import field_mask_pb2
from google.protobuf.internal import enum_type_wrapper

from clients.sdk.calls import call, enum_value, every_page, request_id
from clients.sdk.lazy import lazy_modules

if TYPE_CHECKING:
    from cw.store.v1 import (
        conversation_pb2,
        conversation_pb2_grpc,
        message_pb2,
        message_pb2_grpc,
        phase_pb2,
        project_pb2,
        review_comment_pb2,
        review_comment_pb2_grpc,
        task_pb2,
    )
else:
    (
        conversation_pb2,
        conversation_pb2_grpc,
        message_pb2,
        message_pb2_grpc,
        phase_pb2,
        project_pb2,
        review_comment_pb2,
        review_comment_pb2_grpc,
        task_pb2,
    ) = lazy_modules(
        "cw.store.v1",
        "conversation_pb2",
        "conversation_pb2_grpc",
        "message_pb2",
        "message_pb2_grpc",
        "phase_pb2",
        "project_pb2",
        "review_comment_pb2",
        "review_comment_pb2_grpc",
        "task_pb2",
    )


def _masked(message: Any, fields: dict[str, Any]) -> field_mask_pb2.FieldMask:
    """Sets the given fields (None: left alone) on `message`; the mask names them."""
    paths = []
    for name, value in fields.items():
        if value is None:
            continue
        descriptor = message.DESCRIPTOR.fields_by_name[name]
        enum = descriptor.enum_type
        setattr(message, name, enum_value(enum_type_wrapper.EnumTypeWrapper(enum), value) if enum else value)
        paths.append(name)
    return field_mask_pb2.FieldMask(paths=paths)


class PlanAndReview:
    channel: grpc.Channel
    tasks: Any
    phases: Any
    projects: Any

    @cached_property
    def review_comments(self) -> review_comment_pb2_grpc.ReviewCommentServiceStub:
        return review_comment_pb2_grpc.ReviewCommentServiceStub(self.channel)

    @cached_property
    def conversations(self) -> conversation_pb2_grpc.ConversationServiceStub:
        return conversation_pb2_grpc.ConversationServiceStub(self.channel)

    @cached_property
    def messages(self) -> message_pb2_grpc.MessageServiceStub:
        return message_pb2_grpc.MessageServiceStub(self.channel)

    # ---- editing the plan (refused while a live agent depends on what changes)

    def update_task(self, task_id: str, reopen: bool = False, **fields: Any) -> task_pb2.Task:
        """Changes the given fields (`name`, `description`, `priority`, `category`, `phase_id`)."""
        task = task_pb2.Task(id=task_id)
        request = task_pb2.UpdateTaskRequest(task=task, update_mask=_masked(task, fields), reopen_phase=reopen)
        return call(self.tasks.UpdateTask, request)

    def delete_task(self, task_id: str) -> None:
        call(self.tasks.DeleteTask, task_pb2.DeleteTaskRequest(id=task_id))

    def update_phase(self, phase_id: str, **fields: Any) -> phase_pb2.Phase:
        phase = phase_pb2.Phase(id=phase_id)
        return call(
            self.phases.UpdatePhase, phase_pb2.UpdatePhaseRequest(phase=phase, update_mask=_masked(phase, fields))
        )

    def phases_with_status(self, status: str) -> list[phase_pb2.Phase]:
        """Every initiative's phases in this status (`pending_review`...)."""
        request = phase_pb2.ListPhasesRequest(status=enum_value(phase_pb2.PhaseStatus, status))
        return every_page(self.phases.ListPhases, request, "phases")

    def delete_phase(self, phase_id: str) -> None:
        call(self.phases.DeletePhase, phase_pb2.DeletePhaseRequest(id=phase_id))

    def update_project(self, project_id: str, **fields: Any) -> project_pb2.Project:
        project = project_pb2.Project(id=project_id)
        request = project_pb2.UpdateProjectRequest(project=project, update_mask=_masked(project, fields))
        return call(self.projects.UpdateProject, request)

    def delete_project(self, project_id: str) -> None:
        call(self.projects.DeleteProject, project_pb2.DeleteProjectRequest(id=project_id))

    # ---- review comments

    def create_comment(
        self, phase_id: str, file_path: str, line: int, line_type: str, body: str, *, project_id: str = ""
    ) -> review_comment_pb2.ReviewComment:
        """A comment on a line of `file_path`, a path in the worktree of project `project_id`."""
        comment = review_comment_pb2.ReviewComment(
            phase_id=phase_id,
            project_id=project_id,
            file_path=file_path,
            line_number=line,
            line_type=enum_value(review_comment_pb2.ReviewLineType, line_type),
            body=body,
        )
        request = review_comment_pb2.CreateReviewCommentRequest(review_comment=comment, request_id=request_id())
        return call(self.review_comments.CreateReviewComment, request)

    def list_comments(self, phase_id: str, resolved: bool | None = None) -> list[review_comment_pb2.ReviewComment]:
        request = review_comment_pb2.ListReviewCommentsRequest(phase_id=phase_id)
        if resolved is not None:
            request.resolved = resolved
        return every_page(self.review_comments.ListReviewComments, request, "review_comments")

    def resolve_comment(self, comment_id: str, resolved: bool = True) -> review_comment_pb2.ReviewComment:
        if resolved:
            return call(
                self.review_comments.ResolveReviewComment, review_comment_pb2.ResolveReviewCommentRequest(id=comment_id)
            )
        request = review_comment_pb2.UnresolveReviewCommentRequest(id=comment_id)
        return call(self.review_comments.UnresolveReviewComment, request)

    def delete_comment(self, comment_id: str) -> None:
        call(self.review_comments.DeleteReviewComment, review_comment_pb2.DeleteReviewCommentRequest(id=comment_id))

    # ---- conversations, messages, proposals

    def list_conversations(self, initiative_id: str = "") -> list[conversation_pb2.Conversation]:
        request = conversation_pb2.ListConversationsRequest(initiative_id=initiative_id)
        return every_page(self.conversations.ListConversations, request, "conversations")

    def messages_for_user(self) -> list[message_pb2.Message]:
        request = message_pb2.ListMessagesRequest(pending_for_user=True)
        return every_page(self.messages.ListMessages, request, "messages")

    def get_message(self, message_id: str) -> message_pb2.Message:
        return call(self.messages.GetMessage, message_pb2.GetMessageRequest(id=message_id))

    def reply(self, message_id: str, text: str) -> message_pb2.Message:
        """A reply to an agent's message; the store marks the message RESPONDED with it."""
        original = call(self.messages.GetMessage, message_pb2.GetMessageRequest(id=message_id))
        reply = message_pb2.Message(
            sender_type=message_pb2.PARTICIPANT_TYPE_USER,
            recipient_type=original.sender_type,
            recipient_id=original.sender_id,
            type=message_pb2.MESSAGE_TYPE_RESPONSE,
            content=text,
            parent_message_id=original.id,
        )
        return call(
            self.messages.CreateMessage, message_pb2.CreateMessageRequest(message=reply, request_id=request_id())
        )
