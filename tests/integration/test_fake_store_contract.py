"""The in-memory store (tests/fakes/store.py) answers the orchestrator's port as the real store
does: one scenario through `StorePort`, against the real store (gRPC, each database) and against
the fake, must observe the same things (reads, refusals and their words, what a write leaves)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from types import SimpleNamespace
from typing import Any, Protocol

import grpc
from google.protobuf import timestamp_pb2

from cw.store.v1 import account_pb2, agent_pb2, conversation_pb2, initiative_pb2, message_pb2, phase_pb2, task_pb2
from cw_edge.tokens import Identity
from orchestrator_service.ports import StorePort
from orchestrator_service.store_client import NotReady, Stale, StoreClient, changed_row, changes
from orchestrator_service.writes import update
from tests.fakes.store import FakeStore, as_store_client
from tests.support import RunningStore

MERGED_AT = timestamp_pb2.Timestamp(seconds=1_700_000_000)


class Seed(Protocol):
    """What a person writes through other clients before the orchestrator acts."""

    def initiative(self) -> initiative_pb2.Initiative: ...

    def phase(self, initiative_id: str, name: str, after: Sequence[str] = ()) -> phase_pb2.Phase: ...

    def task(self, phase: phase_pb2.Phase, name: str, after: Sequence[str] = ()) -> task_pb2.Task: ...

    def account(self, cap: int) -> account_pb2.Account: ...


class RealSeed:
    def __init__(self, api: SimpleNamespace) -> None:
        self.api = api

    def initiative(self) -> initiative_pb2.Initiative:
        initiative = self.api.initiatives.CreateInitiative(
            initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="contract"))
        )
        return initiative

    def phase(self, initiative_id: str, name: str, after: Sequence[str] = ()) -> phase_pb2.Phase:
        request = phase_pb2.CreatePhaseRequest(
            phase=phase_pb2.Phase(initiative_id=initiative_id, name=name), depends_on_phase_ids=list(after)
        )
        return self.api.phases.CreatePhase(request)

    def task(self, phase: phase_pb2.Phase, name: str, after: Sequence[str] = ()) -> task_pb2.Task:
        request = task_pb2.CreateTaskRequest(
            task=task_pb2.Task(phase_id=phase.id, name=name), depends_on_task_ids=list(after)
        )
        return self.api.tasks.CreateTask(request)

    def account(self, cap: int) -> account_pb2.Account:
        account = account_pb2.Account(email="capped@x", provider="scripted", max_concurrent_agents=cap)
        return self.api.accounts.CreateAccount(account_pb2.CreateAccountRequest(account=account))


class FakeSeed:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def initiative(self) -> initiative_pb2.Initiative:
        return self.store.create_initiative("contract")

    def phase(self, initiative_id: str, name: str, after: Sequence[str] = ()) -> phase_pb2.Phase:
        return self.store.create_phase(initiative_id, name, after)

    def task(self, phase: phase_pb2.Phase, name: str, after: Sequence[str] = ()) -> task_pb2.Task:
        return self.store.create_task(phase, name, after)

    def account(self, cap: int) -> account_pb2.Account:
        return self.store.create_account("scripted", "capped@x", cap)


def _agent(task: task_pb2.Task, initiative_id: str, run: int = 1, account: str = "") -> agent_pb2.CreateAgentRequest:
    agent = agent_pb2.Agent(
        name=f"run-{run}-{task.name}",
        task_id=task.id,
        session_id=f"session-{run}-{task.name}",
        worktree_id="(starting)",
        initiative_id=initiative_id,
        provider="scripted",
        account_id=account,
        status=agent_pb2.AGENT_STATUS_RUNNING,
        mode=agent_pb2.AGENT_MODE_EXECUTE,
    )
    return agent_pb2.CreateAgentRequest(agent=agent)


def _start(task: task_pb2.Task, initiative_id: str, account: str = "") -> list[object]:
    return [update(task, status=task_pb2.TASK_STATUS_IN_PROGRESS), _agent(task, initiative_id, account=account)]


async def _observe(port: StorePort, seed: Seed) -> list[str]:
    initiative = seed.initiative()
    schema = seed.phase(initiative.id, "schema")
    api = seed.phase(initiative.id, "api", [schema.id])
    users = seed.task(schema, "users")
    sessions = seed.task(schema, "sessions", [users.id])
    login = seed.task(api, "login")
    names = {row.id: row.name for row in (initiative, schema, api, users, sessions, login)}
    seen: list[str] = []

    def words(text: str) -> str:
        for row_id, name in names.items():
            text = text.replace(row_id, f"<{name}>")
        return text

    async def attempt(label: str, *requests: object) -> None:
        try:
            answer = await port.append([], changes(*requests))
        except NotReady as refused:
            seen.append(f"{label}: not ready: {words(str(refused))}")
        except Stale:
            seen.append(f"{label}: stale")
        else:
            kinds = [row.WhichOneof("row") for row in answer.rows]
            seen.append(f"{label}: written {kinds}, sequence moved {answer.last_sequence > 0}")

    async def task(row: task_pb2.Task) -> task_pb2.Task:
        return await port.get("task", row.id)

    seen.append(f"phases: {sorted(p.name for p in await port.phases_in(initiative.id))}")
    seen.append(f"api waits for: {[p.name for p in await port.phase_dependencies(api.id)]}")
    edges = await port.task_dependencies([sessions.id, login.id])
    seen.append(f"edges: {[(names[e.task_id], names[e.depends_on_task_id]) for e in edges]}")
    seen.append(f"projects: {list(await port.projects_of(initiative.id))}")
    await attempt("sessions starts", *_start(await task(sessions), initiative.id))
    await attempt("login starts", *_start(await task(login), initiative.id))
    await attempt(
        "schema to review", update(await port.get("phase", schema.id), status=phase_pb2.PHASE_STATUS_PENDING_REVIEW)
    )
    await attempt(
        "initiative done",
        update(await port.get("initiative", initiative.id), status=initiative_pb2.INITIATIVE_STATUS_COMPLETED),
    )
    await attempt("users renamed", update(await task(users), name="users table"))
    await attempt("users from an old read", update(users, reason="late"))
    await attempt("users starts", *_start(await task(users), initiative.id))
    seen.append(f"users runs: {[a.name for a in await port.live_agents_of(users.id)]}")
    await attempt("users gets a second live agent", _agent(users, initiative.id, run=2))
    done = update(await task(users), status=task_pb2.TASK_STATUS_COMPLETED)
    await attempt(
        "users done, schema to review",
        done,
        update(await port.get("phase", schema.id), status=phase_pb2.PHASE_STATUS_PENDING_REVIEW),
    )
    merged = update(await task(users), status=task_pb2.TASK_STATUS_COMPLETED, merge_time=MERGED_AT)
    await attempt("users done and merged", merged)
    await attempt("sessions starts again", *_start(await task(sessions), initiative.id))
    stored = await task(users)
    seen.append(
        f"users: {task_pb2.TaskStatus.Name(stored.status)}, merged {stored.HasField('merge_time')}, {stored.name!r}"
    )
    seen.append(f"no such phase: {await _missing(port)}")
    capped = seed.account(cap=1)
    names[capped.id] = "capped"
    tokens, extra = seed.task(schema, "tokens"), seed.task(schema, "extra")
    names |= {tokens.id: "tokens", extra.id: "extra"}
    await attempt("tokens starts on the capped account", *_start(await task(tokens), initiative.id, capped.id))
    await attempt("extra starts on it too", *_start(await task(extra), initiative.id, capped.id))
    return seen


async def _missing(port: StorePort) -> str:
    try:
        await port.get("phase", "no-such-phase")
    except Exception as error:
        return type(error).__name__
    return "found"


def test_the_fake_store_observes_what_the_real_one_does(store: RunningStore, api: SimpleNamespace) -> None:
    async def real() -> list[str]:
        client = StoreClient(store.address, store.handle.auth.tokens[Identity.ORCHESTRATOR])
        try:
            return await _observe(client, RealSeed(api))
        finally:
            await client.close()

    fake = FakeStore()
    assert asyncio.run(_observe(fake, FakeSeed(fake))) == asyncio.run(real())


def test_the_scenario_sees_refusals_at_all() -> None:
    """The comparison above is worth something only if the scenario meets each kind of answer."""
    fake = FakeStore()
    seen = asyncio.run(_observe(fake, FakeSeed(fake)))
    assert sum(": not ready: " in line for line in seen) == 7
    assert "runs at most 1 agent(s) at once" in seen[-1]
    assert sum(line.endswith(": stale") for line in seen) == 1


# ---- conversations and messages (the conversations and replies controllers' part of the store) ----


async def _observe_talk(client: StoreClient, reply: Callable[[str, str], None], agents: list[str]) -> list[str]:
    """An agent's messages and the person's reply, a conversation asked and answered, through what
    the controllers call (AppendEvent's changes, ListMessages, GetConversation)."""
    asker, answerer = agents
    seen: list[str] = []

    async def attempt(label: str, *requests: object) -> list[Any]:
        try:
            answer = await client.append([], changes(*requests))
        except Stale:
            seen.append(f"{label}: stale")
        except grpc.aio.AioRpcError as error:
            seen.append(f"{label}: {error.code().name}")
        else:
            seen.append(f"{label}: written {[row.WhichOneof('row') for row in answer.rows]}")
            return [changed_row(row)[1] for row in answer.rows]
        return []

    async def messages(**where: str) -> list[message_pb2.Message]:
        request = message_pb2.ListMessagesRequest(**where)  # type: ignore[arg-type]
        return await client.list_all(client.messages.ListMessages, request, "messages")

    def status(row: message_pb2.Message) -> str:
        return message_pb2.MessageStatus.Name(row.status)

    question = message_pb2.Message(
        sender_type=message_pb2.PARTICIPANT_TYPE_AGENT,
        sender_id=asker,
        recipient_type=message_pb2.PARTICIPANT_TYPE_USER,
        content="sqlite or postgres?",
        requires_response=True,
    )
    ask = message_pb2.CreateMessageRequest(message=question, request_id="message-run-1")
    (made,) = await attempt("the run's message", ask)
    (again,) = await attempt("the same message again", ask)
    seen.append(f"the same row: {again.id == made.id}, {status(made)}")
    reply(made.id, "postgres, please")
    (parent,) = await messages(sender_id=asker)
    (received,) = await messages(recipient_id=asker)
    seen.append(f"after the reply: {status(parent)}; the reply {status(received)}, {received.content!r}")
    seen.append(f"replies to it: {[m.content for m in await messages(parent_message_id=parent.id)]}")
    await attempt("the reply read", update(received, status=message_pb2.MESSAGE_STATUS_READ))
    seen.append(f"the reply now: {[status(m) for m in await messages(recipient_id=asker)]}")

    talk = conversation_pb2.Conversation(from_agent_id=asker, to_agent_id=answerer, question="what is in b.txt?")
    create = conversation_pb2.CreateConversationRequest(conversation=talk, request_id="ask-run-1")
    (asked,) = await attempt("asked", create)
    (same,) = await attempt("asked again", create)
    pending = await client.get("conversation", asked.id)
    seen.append(f"the same: {same.id == asked.id}, {conversation_pb2.ConversationStatus.Name(pending.status)}")
    await attempt("a failed answer run counted", update(pending, attempts=1))
    await attempt("counted from an old read", update(pending, attempts=2))
    await attempt("answered", conversation_pb2.AnswerConversationRequest(id=asked.id, answer="b"))
    await attempt("answered again", conversation_pb2.AnswerConversationRequest(id=asked.id, answer="c"))
    answered = await client.get("conversation", asked.id)
    shown = (conversation_pb2.ConversationStatus.Name(answered.status), answered.answer, answered.attempts)
    seen.append(f"the conversation: {shown}")
    return seen


def _two_agents(
    seed: Seed, start: Callable[[list[agent_pb2.CreateAgentRequest]], Awaitable[list[str]]]
) -> Awaitable[list[str]]:
    initiative = seed.initiative()
    phase = seed.phase(initiative.id, "talk")
    tasks = [seed.task(phase, "a"), seed.task(phase, "b")]
    stopped = []
    for task in tasks:
        request = _agent(task, initiative.id)
        request.agent.status = agent_pb2.AGENT_STATUS_STOPPED
        stopped.append(request)
    return start(stopped)


def test_the_fake_store_keeps_conversations_and_messages_as_the_real_one(
    store: RunningStore, api: SimpleNamespace
) -> None:
    def real_reply(message_id: str, content: str) -> None:
        parent = api.messages.GetMessage(message_pb2.GetMessageRequest(id=message_id))
        reply = message_pb2.Message(
            sender_type=message_pb2.PARTICIPANT_TYPE_USER,
            recipient_type=message_pb2.PARTICIPANT_TYPE_AGENT,
            recipient_id=parent.sender_id,
            parent_message_id=message_id,
            content=content,
        )
        api.messages.CreateMessage(message_pb2.CreateMessageRequest(message=reply))

    async def real() -> list[str]:
        client = StoreClient(store.address, store.handle.auth.tokens[Identity.ORCHESTRATOR])

        async def talk(agents: list[agent_pb2.CreateAgentRequest]) -> list[str]:
            made = await client.append([], changes(*agents))
            return await _observe_talk(client, real_reply, [row.agent.id for row in made.rows])

        try:
            return await _two_agents(RealSeed(api), talk)
        finally:
            await client.close()

    fake = FakeStore()

    def fake_reply(message_id: str, content: str) -> None:
        fake.reply(message_id, content)

    async def faked() -> list[str]:
        async def talk(agents: list[agent_pb2.CreateAgentRequest]) -> list[str]:
            made = await fake.append([], changes(*agents))
            return await _observe_talk(as_store_client(fake), fake_reply, [row.agent.id for row in made.rows])

        return await _two_agents(FakeSeed(fake), talk)

    seen = asyncio.run(faked())
    assert seen == asyncio.run(real())
    assert "answered again: FAILED_PRECONDITION" in seen and "counted from an old read: stale" in seen
