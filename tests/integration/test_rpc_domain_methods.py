"""The repository-specific RPCs of every service, through a real server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import grpc
from google.protobuf import field_mask_pb2, timestamp_pb2

from cw.store.v1 import (
    account_pb2,
    agent_pb2,
    conversation_pb2,
    event_pb2,
    initiative_pb2,
    log_chunk_pb2,
    message_pb2,
    page_pb2,
    phase_pb2,
    project_pb2,
    proposal_pb2,
    review_comment_pb2,
    task_pb2,
)
from tests.support import call_error


def _initiative(api: SimpleNamespace) -> str:
    request = initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="Init"))
    return str(api.initiatives.CreateInitiative(request).id)


def _phase(api: SimpleNamespace, initiative_id: str, name: str) -> str:
    request = phase_pb2.CreatePhaseRequest(phase=phase_pb2.Phase(initiative_id=initiative_id, name=name))
    return str(api.phases.CreatePhase(request).id)


def _agent(api: SimpleNamespace, name: str, **fields: Any) -> Any:
    request = agent_pb2.CreateAgentRequest(agent=agent_pb2.Agent(name=name, worktree_id="/w", **fields))
    return api.agents.CreateAgent(request)


def test_phase_dependencies(api: SimpleNamespace) -> None:
    initiative_id = _initiative(api)
    a, b = _phase(api, initiative_id, "a"), _phase(api, initiative_id, "b")
    edge = api.phases.CreatePhaseDependency(phase_pb2.CreatePhaseDependencyRequest(phase_id=b, depends_on_phase_id=a))
    assert (edge.phase_id, edge.depends_on_phase_id) == (b, a)
    deps = api.phases.ListPhaseDependencies(phase_pb2.ListPhaseDependenciesRequest(phase_id=b))
    assert [p.id for p in deps.phases] == [a]
    dependents = api.phases.ListPhaseDependents(phase_pb2.ListPhaseDependentsRequest(phase_id=a))
    assert [p.id for p in dependents.phases] == [b]
    listed = api.phases.ListPhases(phase_pb2.ListPhasesRequest(initiative_id=initiative_id))
    assert [p.id for p in listed.phases] == [a, b]
    cycle = call_error(
        api.phases.CreatePhaseDependency, phase_pb2.CreatePhaseDependencyRequest(phase_id=a, depends_on_phase_id=b)
    )
    assert (cycle.code, cycle.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "DEPENDENCY_CYCLE")
    missing = call_error(
        api.phases.CreatePhaseDependency,
        phase_pb2.CreatePhaseDependencyRequest(phase_id=a, depends_on_phase_id="missing"),
    )
    assert missing.code == grpc.StatusCode.NOT_FOUND
    duplicate = call_error(
        api.phases.CreatePhaseDependency, phase_pb2.CreatePhaseDependencyRequest(phase_id=b, depends_on_phase_id=a)
    )
    assert duplicate.code == grpc.StatusCode.ALREADY_EXISTS


def test_task_dependencies_and_filters(api: SimpleNamespace) -> None:
    initiative_id = _initiative(api)
    phase_id = _phase(api, initiative_id, "p")

    def task(name: str, **fields: Any) -> str:
        request = task_pb2.CreateTaskRequest(
            task=task_pb2.Task(initiative_id=initiative_id, phase_id=phase_id, name=name, **fields)
        )
        return str(api.tasks.CreateTask(request).id)

    parent = task("parent")
    child = task("child", parent_task_id=parent, status=task_pb2.TASK_STATUS_BLOCKED)
    api.tasks.CreateTaskDependency(task_pb2.CreateTaskDependencyRequest(task_id=child, depends_on_task_id=parent))
    edges = api.tasks.ListTaskDependencies(task_pb2.ListTaskDependenciesRequest(phase_id=phase_id)).dependencies
    assert [(e.task_id, e.depends_on_task_id) for e in edges] == [(child, parent)]
    by_parent = api.tasks.ListTasks(task_pb2.ListTasksRequest(parent_task_id=parent))
    assert [t.id for t in by_parent.tasks] == [child]
    blocked = api.tasks.ListTasks(task_pb2.ListTasksRequest(phase_id=phase_id, status=task_pb2.TASK_STATUS_BLOCKED))
    assert [t.id for t in blocked.tasks] == [child]
    self_edge = call_error(
        api.tasks.CreateTaskDependency, task_pb2.CreateTaskDependencyRequest(task_id=child, depends_on_task_id=child)
    )
    assert self_edge.code == grpc.StatusCode.INVALID_ARGUMENT


def test_list_agents_filters(api: SimpleNamespace) -> None:
    request = task_pb2.CreateTaskRequest(task=task_pb2.Task(name="t"))
    task_id = api.tasks.CreateTask(request).id
    running = _agent(api, "brave-otter", task_id=task_id, status=agent_pb2.AGENT_STATUS_RUNNING, session_id="s")
    _agent(api, "calm-heron")
    assert [a.id for a in api.agents.ListAgents(agent_pb2.ListAgentsRequest(task_id=task_id)).agents] == [running.id]
    by_status = api.agents.ListAgents(agent_pb2.ListAgentsRequest(status=agent_pb2.AGENT_STATUS_RUNNING))
    assert [a.name for a in by_status.agents] == ["brave-otter"]
    by_name = api.agents.ListAgents(agent_pb2.ListAgentsRequest(name="calm-heron"))
    assert [a.name for a in by_name.agents] == ["calm-heron"]
    by_session = api.agents.ListAgents(agent_pb2.ListAgentsRequest(session_id="s"))
    assert [a.id for a in by_session.agents] == [running.id]
    assert running.pid == 0 and not running.HasField("pid")


def test_message_finders(api: SimpleNamespace) -> None:
    question = api.messages.CreateMessage(
        message_pb2.CreateMessageRequest(
            message=message_pb2.Message(
                sender_type=message_pb2.PARTICIPANT_TYPE_AGENT,
                recipient_type=message_pb2.PARTICIPANT_TYPE_USER,
                type=message_pb2.MESSAGE_TYPE_QUESTION,
                content="?",
                requires_response=True,
            )
        )
    )
    for request in (
        message_pb2.ListMessagesRequest(pending_for_user=True),
        message_pb2.ListMessagesRequest(requiring_response=True),
    ):
        assert [m.id for m in api.messages.ListMessages(request).messages] == [question.id]
    reply = api.messages.CreateMessage(
        message_pb2.CreateMessageRequest(
            message=message_pb2.Message(
                sender_type=message_pb2.PARTICIPANT_TYPE_USER,
                recipient_type=message_pb2.PARTICIPANT_TYPE_AGENT,
                content="!",
                parent_message_id=question.id,
            )
        )
    )
    for request, expected in [
        (message_pb2.ListMessagesRequest(pending_for_user=True), []),  # the reply answered it
        (message_pb2.ListMessagesRequest(requiring_response=True), []),
        (message_pb2.ListMessagesRequest(parent_message_id=question.id), [reply.id]),
        (message_pb2.ListMessagesRequest(), [question.id, reply.id]),
    ]:
        assert [m.id for m in api.messages.ListMessages(request).messages] == expected
    answered = api.messages.GetMessage(message_pb2.GetMessageRequest(id=question.id))
    assert answered.status == message_pb2.MESSAGE_STATUS_RESPONDED


def test_root_pages(api: SimpleNamespace) -> None:
    initiative_id = _initiative(api)
    missing = call_error(api.pages.GetRootPage, page_pb2.GetRootPageRequest(initiative_id=initiative_id))
    assert missing.code == grpc.StatusCode.NOT_FOUND
    root = api.pages.GetOrCreateRootPage(page_pb2.GetOrCreateRootPageRequest(initiative_id=initiative_id))
    again = api.pages.GetOrCreateRootPage(page_pb2.GetOrCreateRootPageRequest(initiative_id=initiative_id))
    assert root.id == again.id and root.title == "Init"
    assert api.pages.GetRootPage(page_pb2.GetRootPageRequest(initiative_id=initiative_id)).id == root.id
    child = api.pages.CreatePage(
        page_pb2.CreatePageRequest(page=page_pb2.Page(initiative_id=initiative_id, parent_page_id=root.id, title="c"))
    )
    children = api.pages.ListPages(page_pb2.ListPagesRequest(parent_page_id=root.id))
    assert [p.id for p in children.pages] == [child.id]
    error = call_error(api.pages.GetOrCreateRootPage, page_pb2.GetOrCreateRootPageRequest(initiative_id="missing"))
    assert error.code == grpc.StatusCode.NOT_FOUND


def test_initiative_projects(api: SimpleNamespace) -> None:
    initiative_id = _initiative(api)
    ids = [
        api.projects.CreateProject(
            project_pb2.CreateProjectRequest(project=project_pb2.Project(name=n, url=f"file:///r/{n}"))
        ).id
        for n in "abc"
    ]
    first = api.projects.SetInitiativeProjects(
        project_pb2.SetInitiativeProjectsRequest(initiative_id=initiative_id, project_ids=ids[:2])
    )
    assert list(first.added_project_ids) == ids[:2] and not first.removed_project_ids
    second = api.projects.SetInitiativeProjects(
        project_pb2.SetInitiativeProjectsRequest(initiative_id=initiative_id, project_ids=ids[1:])
    )
    assert (list(second.added_project_ids), list(second.removed_project_ids)) == ([ids[2]], [ids[0]])
    listed = api.projects.ListInitiativeProjects(project_pb2.ListInitiativeProjectsRequest(initiative_id=initiative_id))
    assert {p.id for p in listed.projects} == set(ids[1:])
    error = call_error(
        api.projects.SetInitiativeProjects,
        project_pb2.SetInitiativeProjectsRequest(initiative_id=initiative_id, project_ids=["missing"]),
    )
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION


def test_accounts_keep_their_secrets(api: SimpleNamespace) -> None:
    secret = "sk-ant-SECRET-TOKEN-1234"
    created = api.accounts.CreateAccount(
        account_pb2.CreateAccountRequest(
            account=account_pb2.Account(email="dev@example.com", credentials=secret, config_json='{"c": "CONFIGX"}')
        )
    )
    assert created.has_credentials and created.has_config
    listed = api.accounts.ListAccounts(account_pb2.ListAccountsRequest())
    fetched = api.accounts.GetAccount(account_pb2.GetAccountRequest(id=created.id))
    for shown in (created, listed, fetched):
        assert secret not in str(shown) and "CONFIGX" not in str(shown)
    # Whether each is set, on every read (a page or a Get read as the driver's records too).
    assert all(account.has_credentials and account.has_config for account in (*listed.accounts, fetched))
    secrets = api.accounts.GetAccountSecrets(account_pb2.GetAccountSecretsRequest(id=created.id))
    assert (secrets.credentials, secrets.config_json) == (secret, '{"c": "CONFIGX"}')
    updated = api.accounts.UpdateAccount(
        account_pb2.UpdateAccountRequest(
            account=account_pb2.Account(id=created.id, email="new@example.com"),
            update_mask=field_mask_pb2.FieldMask(paths=["email"]),
        )
    )
    assert secret not in str(updated)
    events = api.events.ListEvents(event_pb2.ListEventsRequest())
    assert secret not in str(events) and "CONFIGX" not in str(events)


def test_account_rotation(api: SimpleNamespace) -> None:
    ids = [
        api.accounts.CreateAccount(
            account_pb2.CreateAccountRequest(account=account_pb2.Account(email=f"{n}@x", sort_order=i))
        ).id
        for i, n in enumerate("ab")
    ]
    request = account_pb2.GetNextAvailableAccountRequest(provider="claude")
    assert [api.accounts.GetNextAvailableAccount(request).id for _ in range(4)] == ids + ids
    until = timestamp_pb2.Timestamp()
    until.FromDatetime(datetime.now(UTC) + timedelta(hours=1))
    exhausted = api.accounts.MarkAccountExhausted(account_pb2.MarkAccountExhaustedRequest(id=ids[0], until=until))
    assert exhausted.is_exhausted and exhausted.exhausted_until == until
    assert [api.accounts.GetNextAvailableAccount(request).id for _ in range(2)] == [ids[1], ids[1]]
    past = timestamp_pb2.Timestamp()
    past.FromDatetime(datetime.now(UTC) - timedelta(seconds=5))
    api.accounts.MarkAccountExhausted(account_pb2.MarkAccountExhaustedRequest(id=ids[0], until=past))
    cleared = api.accounts.ClearExpiredExhaustion(account_pb2.ClearExpiredExhaustionRequest())
    assert cleared.cleared_count == 1
    none_left = call_error(
        api.accounts.GetNextAvailableAccount, account_pb2.GetNextAvailableAccountRequest(provider="codex")
    )
    assert none_left.code == grpc.StatusCode.NOT_FOUND


def test_an_account_whose_credential_was_refused_is_not_handed_out_until_updated(api: SimpleNamespace) -> None:
    def create(email: str) -> str:
        account = account_pb2.Account(email=email, provider="refusals", credentials="old")
        return str(api.accounts.CreateAccount(account_pb2.CreateAccountRequest(account=account)).id)

    refused, other = create("refused@x"), create("other@x")
    marked = api.accounts.UpdateAccount(
        account_pb2.UpdateAccountRequest(
            account=account_pb2.Account(id=refused, unusable_reason="Invalid API key · Fix external API key"),
            update_mask=field_mask_pb2.FieldMask(paths=["unusable_reason"]),
        )
    )
    assert marked.unusable_reason == "Invalid API key · Fix external API key"
    request = account_pb2.GetNextAvailableAccountRequest(provider="refusals")
    assert [api.accounts.GetNextAvailableAccount(request).id for _ in range(3)] == [other] * 3
    # New credentials clear the refusal: the account is handed out again.
    renewed = api.accounts.UpdateAccount(
        account_pb2.UpdateAccountRequest(
            account=account_pb2.Account(id=refused, credentials="new"),
            update_mask=field_mask_pb2.FieldMask(paths=["credentials"]),
        )
    )
    assert renewed.unusable_reason == ""
    assert api.accounts.GetNextAvailableAccount(request).id == refused


def test_exhausted_is_as_of_the_read(api: SimpleNamespace) -> None:
    """A rest whose `exhausted_until` passed shows as over in every answer, though the row keeps
    its flag until the account is handed out (`cw account list` said EXHAUSTED the next day)."""
    created = api.accounts.CreateAccount(account_pb2.CreateAccountRequest(account=account_pb2.Account(email="r@x")))
    past, future = timestamp_pb2.Timestamp(), timestamp_pb2.Timestamp()
    past.FromDatetime(datetime.now(UTC) - timedelta(seconds=5))
    future.FromDatetime(datetime.now(UTC) + timedelta(hours=1))
    rest = account_pb2.MarkAccountExhaustedRequest(id=created.id, until=future)
    assert api.accounts.MarkAccountExhausted(rest).is_exhausted
    assert api.accounts.GetAccount(account_pb2.GetAccountRequest(id=created.id)).is_exhausted
    over = api.accounts.MarkAccountExhausted(account_pb2.MarkAccountExhaustedRequest(id=created.id, until=past))
    assert not over.is_exhausted and over.exhausted_until == past
    assert not api.accounts.GetAccount(account_pb2.GetAccountRequest(id=created.id)).is_exhausted
    listed = api.accounts.ListAccounts(account_pb2.ListAccountsRequest(page_size=100)).accounts
    assert [account.is_exhausted for account in listed if account.id == created.id] == [False]
    # Resting with no end stays exhausted.
    open_ended = api.accounts.MarkAccountExhausted(account_pb2.MarkAccountExhaustedRequest(id=created.id))
    assert open_ended.is_exhausted


def test_proposals_by_agent(api: SimpleNamespace) -> None:
    initiative_id = _initiative(api)
    agent = _agent(api, "a")
    for title in ("one", "two"):
        api.proposals.CreateProposal(
            proposal_pb2.CreateProposalRequest(
                proposal=proposal_pb2.Proposal(
                    agent_id=agent.id,
                    initiative_id=initiative_id,
                    target_type=proposal_pb2.PROPOSAL_TARGET_TYPE_PAGE,
                    title=title,
                )
            )
        )
    pending = proposal_pb2.CountProposalsRequest(agent_id=agent.id, status=proposal_pb2.PROPOSAL_STATUS_PENDING)
    assert api.proposals.CountProposals(pending).count == 2
    updated = api.proposals.UpdateAgentProposals(
        proposal_pb2.UpdateAgentProposalsRequest(
            agent_id=agent.id,
            proposal=proposal_pb2.Proposal(status=proposal_pb2.PROPOSAL_STATUS_DISMISSED),
            update_mask=field_mask_pb2.FieldMask(paths=["status"]),
        )
    )
    assert updated.updated_count == 2
    assert api.proposals.CountProposals(pending).count == 0
    dismissed = api.proposals.ListProposals(
        proposal_pb2.ListProposalsRequest(agent_id=agent.id, status=proposal_pb2.PROPOSAL_STATUS_DISMISSED)
    )
    assert len(dismissed.proposals) == 2


def test_log_chunks(api: SimpleNamespace) -> None:
    agent = _agent(api, "a")
    for session, text in ((1, '{"a":1}\n'), (1, '{"b":2}\n'), (2, '{"c":3}\n')):
        api.log_chunks.CreateLogChunk(
            log_chunk_pb2.CreateLogChunkRequest(
                log_chunk=log_chunk_pb2.LogChunk(
                    agent_id=agent.id, agent_name=agent.name, session_number=session, content=text
                )
            )
        )
    count = api.log_chunks.GetSessionCount(log_chunk_pb2.GetSessionCountRequest(agent_id=agent.id))
    assert count.session_count == 2
    api.agents.DeleteAgent(agent_pb2.DeleteAgentRequest(id=agent.id))
    chunks = api.log_chunks.ListLogChunks(log_chunk_pb2.ListLogChunksRequest(agent_id=agent.id))
    assert [c.content for c in chunks.log_chunks] == ['{"a":1}\n', '{"b":2}\n', '{"c":3}\n']
    second = api.log_chunks.ListLogChunks(log_chunk_pb2.ListLogChunksRequest(agent_id=agent.id, session_number=2))
    assert len(second.log_chunks) == 1
    deleted = api.log_chunks.DeleteLogChunks(log_chunk_pb2.DeleteLogChunksRequest(agent_id=agent.id))
    assert deleted.deleted_count == 3


def test_conversations_answer_once(api: SimpleNamespace) -> None:
    asker, answerer = _agent(api, "asker"), _agent(api, "answerer")
    conversation = api.conversations.CreateConversation(
        conversation_pb2.CreateConversationRequest(
            conversation=conversation_pb2.Conversation(
                from_agent_id=asker.id, to_agent_id=answerer.id, question="which port?"
            )
        )
    )
    assert conversation.status == conversation_pb2.CONVERSATION_STATUS_PENDING
    pending = api.conversations.ListPendingConversations(
        conversation_pb2.ListPendingConversationsRequest(to_agent_id=answerer.id)
    )
    assert [c.id for c in pending.conversations] == [conversation.id]
    answered = api.conversations.AnswerConversation(
        conversation_pb2.AnswerConversationRequest(id=conversation.id, answer="50051")
    )
    assert (answered.answer, answered.status) == ("50051", conversation_pb2.CONVERSATION_STATUS_ANSWERED)
    again = call_error(
        api.conversations.AnswerConversation, conversation_pb2.AnswerConversationRequest(id=conversation.id, answer="x")
    )
    assert (again.code, again.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "ALREADY_ANSWERED")
    fetched = api.conversations.GetConversation(conversation_pb2.GetConversationRequest(id=conversation.id))
    assert fetched.answer == "50051"


def test_review_comments(api: SimpleNamespace) -> None:
    phase_id = _phase(api, _initiative(api), "p")
    comment = api.review_comments.CreateReviewComment(
        review_comment_pb2.CreateReviewCommentRequest(
            review_comment=review_comment_pb2.ReviewComment(
                phase_id=phase_id,
                file_path="src/a.py",
                line_number=12,
                line_type=review_comment_pb2.REVIEW_LINE_TYPE_ADDED,
                body="rename this",
            )
        )
    )
    assert comment.author == "you" and not comment.resolved
    resolved = api.review_comments.ResolveReviewComment(review_comment_pb2.ResolveReviewCommentRequest(id=comment.id))
    assert resolved.resolved
    unresolved = api.review_comments.UnresolveReviewComment(
        review_comment_pb2.UnresolveReviewCommentRequest(id=comment.id)
    )
    assert not unresolved.resolved
    listed = api.review_comments.ListReviewComments(review_comment_pb2.ListReviewCommentsRequest(phase_id=phase_id))
    assert [c.id for c in listed.review_comments] == [comment.id]
    assert api.review_comments.GetReviewComment(review_comment_pb2.GetReviewCommentRequest(id=comment.id)).body
    api.review_comments.DeleteReviewComment(review_comment_pb2.DeleteReviewCommentRequest(id=comment.id))
    gone = call_error(
        api.review_comments.ResolveReviewComment, review_comment_pb2.ResolveReviewCommentRequest(id=comment.id)
    )
    assert gone.code == grpc.StatusCode.NOT_FOUND
