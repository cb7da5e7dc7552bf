"""Every repository method against a real, migrated SQLite file."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from store_service.api.task import TASK
from store_service.db.models import Event, Page, utcnow
from store_service.domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    MissingReference,
    NotFound,
)
from store_service.repositories.unit_of_work import SqlAlchemyUnitOfWork, UnitOfWorkFactory


def seed_initiative(uow: SqlAlchemyUnitOfWork, name: str = "User auth") -> str:
    return uow.initiatives.create(name=name).id


def test_initiative_crud_and_find_by_status(units: UnitOfWorkFactory) -> None:
    with units.write() as uow:
        first = uow.initiatives.create(name="User auth")
        second = uow.initiatives.create(name="User auth")
        uow.initiatives.update(second.id, status="archived")
        uow.commit()
    assert (first.branch, second.branch) == ("cw/user-auth", "cw/user-auth-2")
    assert len(first.id) == 21
    with units.read() as uow:
        assert [i.id for i in uow.initiatives.find_all()] == [first.id, second.id]
        assert [i.id for i in uow.initiatives.find_by_status("archived")] == [second.id]
        assert uow.initiatives.find_by_id(first.id) is not None
    with units.write() as uow:
        uow.initiatives.delete(first.id)
        uow.commit()
    with units.read() as uow:
        assert uow.initiatives.find_by_id(first.id) is None
        with pytest.raises(NotFound):
            uow.initiatives.get(first.id)


def test_timestamps_are_managed(units: UnitOfWorkFactory) -> None:
    with units.write() as uow:
        initiative = uow.initiatives.create(name="x")
        uow.commit()
    created = initiative.create_time
    with units.write() as uow:
        updated = uow.initiatives.update(initiative.id, name="y")
        uow.commit()
    assert updated.create_time == created
    assert updated.update_time > created


def test_phase_dependencies(units: UnitOfWorkFactory) -> None:
    with units.write() as uow:
        initiative_id = seed_initiative(uow)
        a, b, c = (uow.phases.create(initiative_id=initiative_id, name=n) for n in "abc")
        uow.phases.create_dependency(b.id, a.id)
        uow.phases.create_dependency(c.id, b.id)
        uow.commit()
    with units.read() as uow:
        assert [p.id for p in uow.phases.get_dependencies(b.id)] == [a.id]
        assert [p.id for p in uow.phases.get_dependents(b.id)] == [c.id]
        assert [p.id for p in uow.phases.find_by_initiative_id(initiative_id)] == [a.id, b.id, c.id]
    with units.write() as uow, pytest.raises(FailedPrecondition):
        uow.phases.create_dependency(a.id, c.id)  # a -> c -> b -> a
    with units.write() as uow, pytest.raises(InvalidArgument):
        uow.phases.create_dependency(a.id, a.id)
    with units.write() as uow, pytest.raises(AlreadyExists):
        uow.phases.create_dependency(b.id, a.id)


def test_task_finders_and_dependencies(units: UnitOfWorkFactory) -> None:
    with units.write() as uow:
        initiative_id = seed_initiative(uow)
        phase = uow.phases.create(initiative_id=initiative_id, name="p")
        parent = uow.tasks.create(initiative_id=initiative_id, phase_id=phase.id, name="parent")
        child = uow.tasks.create(initiative_id=initiative_id, phase_id=phase.id, parent_task_id=parent.id, name="c")
        loose = uow.tasks.create(name="no phase")
        edge = uow.tasks.create_dependency(child.id, parent.id)
        uow.commit()
    assert child.retry_count == 0 and child.status == "pending" and child.priority == "medium"
    with units.read() as uow:
        assert [t.id for t in uow.tasks.find_by_parent_task_id(parent.id)] == [child.id]
        assert [t.id for t in uow.tasks.find_by_phase_id(phase.id)] == [parent.id, child.id]
        assert [e.id for e in uow.tasks.find_dependencies(task_id=parent.id)] == [edge.id]
        assert [e.id for e in uow.tasks.find_dependencies(phase_id=phase.id)] == [edge.id]
        assert [e.id for e in uow.tasks.find_dependencies(initiative_id=initiative_id)] == [edge.id]
        assert uow.tasks.find_dependencies(task_id=loose.id) == []
    with units.write() as uow, pytest.raises(FailedPrecondition):
        uow.tasks.create_dependency(parent.id, child.id)


def test_missing_reference_names_the_field(units: UnitOfWorkFactory) -> None:
    with units.write() as uow, pytest.raises(MissingReference) as raised:
        uow.tasks.create(name="t", phase_id="missing")
    assert raised.value.metadata["field"] == "phase_id"


def test_agent_finders_and_unique_name(units: UnitOfWorkFactory) -> None:
    with units.write() as uow:
        task = uow.tasks.create(name="t")
        agent = uow.agents.create(name="brave-otter", worktree_id="/w", task_id=task.id, session_id="s1")
        uow.agents.create(name="calm-heron", worktree_id="/w", status="running")
        uow.commit()
    with units.read() as uow:
        assert uow.agents.find_by_name("brave-otter").id == agent.id  # type: ignore[union-attr]
        assert [a.id for a in uow.agents.find_by_task_id(task.id)] == [agent.id]
        assert uow.agents.find_by_session_id("s1").id == agent.id  # type: ignore[union-attr]
        assert [a.name for a in uow.agents.find_by_status("running")] == ["calm-heron"]
        assert uow.agents.find_by_name("nobody") is None
    with units.write() as uow, pytest.raises(AlreadyExists) as raised:
        uow.agents.create(name="brave-otter", worktree_id="/w")
    assert raised.value.metadata["field"] == "name"


def test_message_finders(units: UnitOfWorkFactory) -> None:
    with units.write() as uow:
        question = uow.messages.create(
            sender_type="agent", recipient_type="user", type="question", content="?", requires_response=True
        )
        reply = uow.messages.create(
            sender_type="user", recipient_type="agent", content="!", parent_message_id=question.id
        )
        uow.messages.create(sender_type="agent", recipient_type="user", content="fyi", status="read")
        uow.commit()
    with units.read() as uow:
        assert [m.id for m in uow.messages.find_pending_for_user()] == [question.id]
        assert [m.id for m in uow.messages.find_requiring_response()] == [question.id]
        assert [m.id for m in uow.messages.find_replies(question.id)] == [reply.id]


def test_pages_root_and_children(units: UnitOfWorkFactory) -> None:
    with units.write() as uow:
        initiative_id = seed_initiative(uow)
        assert uow.pages.find_root_page(initiative_id) is None
        root = uow.pages.get_or_create_root_page(initiative_id)
        again = uow.pages.get_or_create_root_page(initiative_id)
        child = uow.pages.create(initiative_id=initiative_id, parent_page_id=root.id, title="child")
        uow.commit()
    assert root.id == again.id and root.title == "User auth"
    with units.read() as uow:
        assert uow.pages.find_root_page(initiative_id).id == root.id  # type: ignore[union-attr]
        assert [p.id for p in uow.pages.find_by_parent_page_id(root.id)] == [child.id]


def test_get_or_create_root_page_concurrently_makes_one(units: UnitOfWorkFactory) -> None:
    with units.write() as uow:
        initiative_id = seed_initiative(uow)
        uow.commit()
    results: list[str] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        with units.write() as uow:
            results.append(uow.pages.get_or_create_root_page(initiative_id).id)
            uow.commit()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and len(set(results)) == 1
    with units.read() as uow:
        roots = uow.session.scalars(select(Page).where(Page.parent_page_id.is_(None))).all()
    assert len(roots) == 1


def test_set_initiative_projects_is_diff_based(units: UnitOfWorkFactory) -> None:
    with units.write() as uow:
        initiative_id = seed_initiative(uow)
        a, b, c = (uow.projects.create(name=n, url=f"/repos/{n}") for n in "abc")
        assert a.default_branch == "main"
        first = uow.projects.set_initiative_projects(initiative_id, [a.id, b.id])
        uow.commit()
    assert (first.added, first.removed) == ([a.id, b.id], [])
    before = _events_of(units, "initiative_project:created")
    with units.write() as uow:
        second = uow.projects.set_initiative_projects(initiative_id, [b.id, c.id])
        uow.commit()
    assert (second.added, second.removed) == ([c.id], [a.id])
    # b's link was left alone: one new link, one removed, nothing recreated.
    assert _events_of(units, "initiative_project:created") == before + 1
    assert _events_of(units, "initiative_project:deleted") == 1
    with units.read() as uow:
        assert {p.id for p in uow.projects.find_projects_by_initiative_id(initiative_id)} == {b.id, c.id}
    with units.write() as uow:
        with pytest.raises(MissingReference):
            uow.projects.set_initiative_projects(initiative_id, ["missing"])
        with pytest.raises(AlreadyExists):
            uow.projects.create(name="d", url="/repos/a")


def _events_of(units: UnitOfWorkFactory, event_type: str) -> int:
    with units.read() as uow:
        return len(uow.session.scalars(select(Event).where(Event.type == event_type)).all())


def test_find_next_available_is_round_robin(units: UnitOfWorkFactory) -> None:
    with units.write() as uow:
        ids = [uow.accounts.create(email=f"{n}@x", provider="claude", sort_order=i).id for i, n in enumerate("abc")]
        uow.accounts.create(email="other@x", provider="codex")
        uow.commit()
    picked = []
    for _ in range(6):
        with units.write() as uow:
            picked.append(uow.accounts.find_next_available("claude").id)  # type: ignore[union-attr]
            uow.commit()
    assert picked == ids + ids


def test_find_next_available_skips_exhausted_until_expiry(units: UnitOfWorkFactory) -> None:
    with units.write() as uow:
        a = uow.accounts.create(email="a@x")
        b = uow.accounts.create(email="b@x")
        uow.accounts.mark_exhausted(a.id, utcnow() + timedelta(hours=1))
        uow.accounts.mark_exhausted(b.id, utcnow() - timedelta(seconds=1))
        uow.commit()
    with units.write() as uow:
        chosen = uow.accounts.find_next_available("claude")
        uow.commit()
    assert chosen is not None and chosen.id == b.id and not chosen.is_exhausted
    with units.write() as uow:
        uow.accounts.mark_exhausted(b.id, None)  # exhausted with no end: never available
        assert uow.accounts.find_next_available("claude") is None
        uow.accounts.mark_exhausted(a.id, utcnow() - timedelta(seconds=1))
        assert uow.accounts.clear_expired_exhaustion() == 1
        assert not uow.accounts.get(a.id).is_exhausted


def test_proposals(units: UnitOfWorkFactory) -> None:
    with units.write() as uow:
        initiative_id = seed_initiative(uow)
        agent = uow.agents.create(name="a", worktree_id="/w")
        for title in ("one", "two"):
            uow.proposals.create(agent_id=agent.id, initiative_id=initiative_id, target_type="page", title=title)
        uow.commit()
    with units.write() as uow:
        assert uow.proposals.count_by_agent_id_and_status(agent.id, "pending") == 2
        assert uow.proposals.update_many_by_agent_id(agent.id, status="accepted") == 2
        uow.commit()
    with units.read() as uow:
        assert uow.proposals.count_by_agent_id_and_status(agent.id, "pending") == 0
        assert len(uow.proposals.find_by_agent_id_and_status(agent.id, "accepted")) == 2
        assert len(uow.proposals.find_by_agent_id_and_status(agent.id)) == 2


def test_log_chunks_sessions_and_survival(units: UnitOfWorkFactory) -> None:
    with units.write() as uow:
        agent = uow.agents.create(name="a", worktree_id="/w")
        for session, text in ((1, "a"), (1, "b"), (2, "c")):
            uow.log_chunks.insert_chunk(agent.id, agent.name, session, text)
        uow.commit()
    with units.write() as uow:
        assert uow.log_chunks.get_session_count(agent.id) == 2
        uow.agents.delete(agent.id)
        uow.commit()
    with units.write() as uow:
        assert [c.content for c in uow.log_chunks.find_by_agent_id(agent.id)] == ["a", "b", "c"]
        assert uow.log_chunks.delete_by_agent_id(agent.id) == 3
        assert uow.log_chunks.get_session_count(agent.id) == 0


def test_conversation_answer_once(units: UnitOfWorkFactory) -> None:
    with units.write() as uow:
        asker = uow.agents.create(name="asker", worktree_id="/w")
        answerer = uow.agents.create(name="answerer", worktree_id="/w")
        conversation = uow.conversations.create(from_agent_id=asker.id, to_agent_id=answerer.id, question="?")
        uow.commit()
    with units.write() as uow:
        assert [c.id for c in uow.conversations.find_pending_for_agent(answerer.id)] == [conversation.id]
        answered = uow.conversations.answer(conversation.id, "42")
        uow.commit()
    assert (answered.answer, answered.status) == ("42", "answered")
    with units.write() as uow:
        assert uow.conversations.find_pending_for_agent(answerer.id) == []
        with pytest.raises(FailedPrecondition):
            uow.conversations.answer(conversation.id, "43")
    with units.read() as uow:
        assert uow.conversations.find_by_id(conversation.id).answer == "42"  # type: ignore[union-attr]


def test_chat_sessions_and_messages(units: UnitOfWorkFactory) -> None:
    with units.write() as uow:
        initiative_id = seed_initiative(uow)
        phase = uow.phases.create(initiative_id=initiative_id, name="p")
        agent = uow.agents.create(name="a", worktree_id="/w")
        session = uow.chat_sessions.create_session(
            target_type="phase", target_id=phase.id, initiative_id=initiative_id, agent_id=agent.id
        )
        message = uow.chat_sessions.create_message(chat_session_id=session.id, role="user", content="hi")
        uow.commit()
    with units.write() as uow:
        assert uow.chat_sessions.find_active_session("phase", phase.id).id == session.id  # type: ignore[union-attr]
        assert uow.chat_sessions.find_active_session_by_agent_id(agent.id).id == session.id  # type: ignore[union-attr]
        assert [m.id for m in uow.chat_sessions.find_messages_by_session_id(session.id)] == [message.id]
        uow.chat_sessions.update_session(session.id, status="closed")
        assert uow.chat_sessions.find_active_session("phase", phase.id) is None
        assert uow.chat_sessions.find_active_session_by_agent_id(agent.id) is None


def test_review_comments(units: UnitOfWorkFactory) -> None:
    with units.write() as uow:
        phase = uow.phases.create(initiative_id=seed_initiative(uow), name="p")
        comment = uow.review_comments.create(
            phase_id=phase.id, file_path="a.py", line_number=3, line_type="added", body="why?"
        )
        uow.commit()
    assert (comment.author, comment.resolved) == ("you", False)
    with units.write() as uow:
        assert uow.review_comments.resolve(comment.id).resolved
        assert not uow.review_comments.unresolve(comment.id).resolved
        assert [c.id for c in uow.review_comments.find_by_phase_id(phase.id)] == [comment.id]
        uow.review_comments.delete(comment.id)
        assert uow.review_comments.find_by_phase_id(phase.id) == []


def test_every_write_records_its_event_in_the_same_transaction(units: UnitOfWorkFactory) -> None:
    with units.write() as uow:
        initiative_id = seed_initiative(uow)
        uow.commit()
    with units.write() as uow:
        uow.initiatives.update(initiative_id, name="renamed")
        # Not committed: neither the change nor its event may be kept.
    with units.read() as uow:
        assert uow.initiatives.get(initiative_id).name == "User auth"
        types = [e.type for e in uow.events.find_after(0, 100)]
    assert types == ["initiative:created"]
    with units.write() as uow:
        uow.initiatives.update(initiative_id, name="renamed")
        uow.events.append("phase:started", {"why": "test"}, initiative_id=initiative_id)
        uow.commit()
    with units.read() as uow:
        events = uow.events.find_after(1, 100)
        assert [e.type for e in events] == ["initiative:updated", "phase:started"]
        assert events[0].details["changed"] == ["name"]
        assert uow.events.last_sequence() == 3
        assert [e.sequence for e in uow.events.find_after(0, 100, types=["phase:started"])] == [3]


def test_cascades(units: UnitOfWorkFactory) -> None:
    with units.write() as uow:
        initiative_id = seed_initiative(uow)
        a = uow.phases.create(initiative_id=initiative_id, name="a")
        b = uow.phases.create(initiative_id=initiative_id, name="b")
        uow.phases.create_dependency(b.id, a.id)
        t1 = uow.tasks.create(initiative_id=initiative_id, phase_id=a.id, name="t1")
        t2 = uow.tasks.create(initiative_id=initiative_id, phase_id=a.id, name="t2")
        uow.tasks.create_dependency(t2.id, t1.id)
        uow.pages.get_or_create_root_page(initiative_id)
        agent = uow.agents.create(name="a", worktree_id="/w", task_id=t1.id)
        other = uow.agents.create(name="b", worktree_id="/w", task_id=t2.id)
        uow.proposals.create(agent_id=agent.id, initiative_id=initiative_id, target_type="task", title="p")
        uow.log_chunks.insert_chunk(other.id, other.name, 1, "output")
        uow.commit()
    with units.write() as uow:
        uow.tasks.delete(t2.id)
        uow.commit()
    with units.read() as uow:
        assert uow.agents.get(other.id).task_id is None
        assert uow.tasks.find_dependencies(initiative_id=initiative_id) == []
    with units.write() as uow:
        uow.agents.delete(other.id)
        uow.initiatives.delete(initiative_id)
        uow.commit()
    with units.read() as uow:
        assert uow.phases.find_by_initiative_id(initiative_id) == []
        assert uow.phases.find_by_id(b.id) is None
        assert uow.tasks.find_by_id(t1.id) is None
        assert uow.pages.find_root_page(initiative_id) is None
        assert uow.proposals.find_by_agent_id_and_status(agent.id) == []
        assert uow.agents.get(agent.id).task_id is None
        assert uow.agents.get(agent.id).initiative_id is None
        assert [c.content for c in uow.log_chunks.find_by_agent_id(other.id)] == ["output"]
        for table in ("phase_dependencies", "task_dependencies", "pages", "proposals", "tasks", "phases"):
            assert uow.session.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0, table


def test_initiative_branches_never_collide_in_git(units: UnitOfWorkFactory) -> None:
    with units.write() as uow:
        nested = uow.initiatives.create(name="nested", branch="cw/auth/v2")
        automatic = uow.initiatives.create(name="auth")
        assert automatic.branch == "cw/auth-2"  # cw/auth would collide with cw/auth/v2
        with pytest.raises(AlreadyExists):
            uow.initiatives.create(name="x", branch="cw/auth/v2/more")
        with pytest.raises(AlreadyExists):
            uow.initiatives.update(automatic.id, branch="cw/auth")
        for bad in ("has space", "a..b", "ends/", "-starts", "x.lock", "a~1"):
            with pytest.raises(InvalidArgument):
                uow.initiatives.create(name="x", branch=bad)
        assert uow.initiatives.update(nested.id, branch="cw/auth/v3").branch == "cw/auth/v3"


def test_a_created_row_s_answer_is_its_event_s_message_until_the_row_changes(units: UnitOfWorkFactory) -> None:
    with units.write() as uow:
        task = uow.tasks.create(name="first")
        inserted = TASK.to_message(task)
        assert inserted.name == "first" and TASK.to_message(task) is inserted  # built once
        task.name = "pending"
        assert TASK.to_message(task).name == "pending"  # changed, not flushed yet
        uow.tasks.update(task.id, name="flushed")
        assert TASK.to_message(task).name == "flushed"
        uow.commit()
