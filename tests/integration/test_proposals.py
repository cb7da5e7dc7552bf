"""ProposalService/AcceptProposals and DismissProposals against a real store: keys resolved,
dependencies created, one change set, refusals as a whole, idempotence, revert."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import grpc
from google.protobuf import field_mask_pb2

from cw.store.v1 import agent_pb2, event_pb2, initiative_pb2, page_pb2, phase_pb2, task_pb2
from cw.store.v1 import chat_session_pb2 as chat
from cw.store.v1 import proposal_pb2 as pr
from tests.support import call_error

PHASE, TASK, PAGE = pr.PROPOSAL_TARGET_TYPE_PHASE, pr.PROPOSAL_TARGET_TYPE_TASK, pr.PROPOSAL_TARGET_TYPE_PAGE


def _agent(api: SimpleNamespace) -> tuple[str, str]:
    initiative = api.initiatives.CreateInitiative(
        initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="Plan me"))
    )
    agent = api.agents.CreateAgent(
        agent_pb2.CreateAgentRequest(
            agent=agent_pb2.Agent(name="wise-owl", worktree_id="w", initiative_id=initiative.id)
        )
    )
    return initiative.id, agent.id


def _propose(api: SimpleNamespace, initiative_id: str, agent_id: str, *specs: dict[str, Any]) -> list[pr.Proposal]:
    """One report's proposals, stored as the orchestrator stores them: with its settlement."""
    changes = [
        event_pb2.StateChange(
            create_proposal=pr.CreateProposalRequest(
                proposal=pr.Proposal(
                    agent_id=agent_id, initiative_id=initiative_id, report_id="r1", sort_order=index, **spec
                )
            )
        )
        for index, spec in enumerate(specs)
    ]
    answer = api.events.AppendEvent(event_pb2.AppendEventRequest(changes=changes))
    return [row.proposal for row in answer.rows]


def _accept(api: SimpleNamespace, *proposals: pr.Proposal) -> pr.AcceptProposalsResponse:
    return api.proposals.AcceptProposals(pr.AcceptProposalsRequest(proposal_ids=[p.id for p in proposals]))


def _phases(api: SimpleNamespace, initiative_id: str) -> dict[str, phase_pb2.Phase]:
    listed = api.phases.ListPhases(phase_pb2.ListPhasesRequest(initiative_id=initiative_id)).phases
    return {phase.name: phase for phase in listed}


def _waits_for(api: SimpleNamespace, phase_id: str) -> set[str]:
    found = api.phases.ListPhaseDependencies(phase_pb2.ListPhaseDependenciesRequest(phase_id=phase_id)).phases
    return {phase.name for phase in found}


def test_accepting_phases_resolves_keys_into_edges_in_one_change_set_and_revert_undoes_it(
    api: SimpleNamespace,
) -> None:
    initiative_id, agent_id = _agent(api)
    schema, server, client = _propose(
        api,
        initiative_id,
        agent_id,
        {"key": "p1", "target_type": PHASE, "title": "Schema", "content": "tables"},
        {"key": "p2", "target_type": PHASE, "title": "Server", "depends_on": ["p1"]},
        {"key": "p3", "target_type": PHASE, "title": "Client", "depends_on": ["p1", "p2"]},
    )
    assert list(client.depends_on) == ["p1", "p2"] and schema.status == pr.PROPOSAL_STATUS_PENDING
    accepted = _accept(api, schema, server, client)
    phases = _phases(api, initiative_id)
    assert set(phases) == {"Schema", "Server", "Client"} and phases["Schema"].content == "tables"
    assert _waits_for(api, phases["Client"].id) == {"Schema", "Server"}
    assert _waits_for(api, phases["Server"].id) == {"Schema"}
    assert all(p.status == pr.PROPOSAL_STATUS_ACCEPTED for p in accepted.proposals)
    assert [p.entity_id for p in accepted.proposals] == [phases[n].id for n in ("Schema", "Server", "Client")]
    change_set = api.chat_sessions.GetChangeSet(chat.GetChangeSetRequest(id=accepted.change_set_id))
    kinds = [entry.entity_type for entry in change_set.entries]
    assert (
        kinds.count(chat.CHANGE_ENTITY_TYPE_PHASE) == 3 and kinds.count(chat.CHANGE_ENTITY_TYPE_PHASE_DEPENDENCY) == 3
    )
    assert not change_set.chat_session_id

    again = _accept(api, schema, server, client)
    assert again.change_set_id == accepted.change_set_id and len(_phases(api, initiative_id)) == 3

    api.chat_sessions.RevertChangeSet(chat.RevertChangeSetRequest(id=accepted.change_set_id))
    assert _phases(api, initiative_id) == {}
    reopened = api.proposals.GetProposal(pr.GetProposalRequest(id=client.id))
    assert reopened.status == pr.PROPOSAL_STATUS_PENDING and not reopened.change_set_id and not reopened.entity_id


def test_a_task_whose_phase_proposal_is_not_accepted_is_refused_then_accepted_after_it(api: SimpleNamespace) -> None:
    initiative_id, agent_id = _agent(api)
    phase, first, second = _propose(
        api,
        initiative_id,
        agent_id,
        {"key": "p1", "target_type": PHASE, "title": "Build"},
        {"key": "t1", "target_type": TASK, "title": "Model", "parent": "p1", "priority": task_pb2.TASK_PRIORITY_HIGH},
        {"key": "t2", "target_type": TASK, "title": "View", "parent": "p1", "depends_on": ["t1"]},
    )
    refused = call_error(api.proposals.AcceptProposals, pr.AcceptProposalsRequest(proposal_ids=[first.id]))
    assert refused.code == grpc.StatusCode.FAILED_PRECONDITION and refused.reason == "UNRESOLVED_REFERENCE"
    assert phase.id in refused.message and refused.metadata["proposals"] == first.id
    _accept(api, phase)
    _accept(api, first, second)  # p1 resolves to the phase it made earlier
    tasks = api.tasks.ListTasks(task_pb2.ListTasksRequest(initiative_id=initiative_id)).tasks
    by_name = {task.name: task for task in tasks}
    assert {task.phase_id for task in tasks} == {_phases(api, initiative_id)["Build"].id}
    assert by_name["Model"].priority == task_pb2.TASK_PRIORITY_HIGH
    assert by_name["View"].category == task_pb2.TASK_CATEGORY_EXECUTE
    edges = api.tasks.ListTaskDependencies(task_pb2.ListTaskDependenciesRequest(initiative_id=initiative_id))
    assert [(e.task_id, e.depends_on_task_id) for e in edges.dependencies] == [
        (by_name["View"].id, by_name["Model"].id)
    ]


def test_a_cyclic_set_is_refused_whole(api: SimpleNamespace) -> None:
    initiative_id, agent_id = _agent(api)
    proposals = _propose(
        api,
        initiative_id,
        agent_id,
        {"key": "a", "target_type": PHASE, "title": "A", "depends_on": ["b"]},
        {"key": "b", "target_type": PHASE, "title": "B", "depends_on": ["a"]},
    )
    refused = call_error(
        api.proposals.AcceptProposals, pr.AcceptProposalsRequest(proposal_ids=[p.id for p in proposals])
    )
    assert refused.code == grpc.StatusCode.FAILED_PRECONDITION and refused.reason == "DEPENDENCY_CYCLE"
    assert _phases(api, initiative_id) == {}
    states = [api.proposals.GetProposal(pr.GetProposalRequest(id=p.id)).status for p in proposals]
    assert states == [pr.PROPOSAL_STATUS_PENDING] * 2


def test_a_stale_target_is_refused_naming_it(api: SimpleNamespace) -> None:
    initiative_id, agent_id = _agent(api)
    phase = api.phases.CreatePhase(
        phase_pb2.CreatePhaseRequest(phase=phase_pb2.Phase(initiative_id=initiative_id, name="Old"))
    )
    (edit,) = _propose(
        api,
        initiative_id,
        agent_id,
        {"target_type": PHASE, "target_id": phase.id, "title": "New", "target_update_time": phase.update_time},
    )
    api.phases.UpdatePhase(
        phase_pb2.UpdatePhaseRequest(phase=phase_pb2.Phase(id=phase.id, content="edited by a person"))
    )
    refused = call_error(api.proposals.AcceptProposals, pr.AcceptProposalsRequest(proposal_ids=[edit.id]))
    assert refused.code == grpc.StatusCode.FAILED_PRECONDITION and refused.reason == "PROPOSAL_STALE"
    assert refused.metadata["proposals"] == edit.id and _phases(api, initiative_id).keys() == {"Old"}


def test_pages_go_under_the_root_page_and_edits_change_the_target(api: SimpleNamespace) -> None:
    initiative_id, agent_id = _agent(api)
    root = api.pages.GetOrCreateRootPage(page_pb2.GetOrCreateRootPageRequest(initiative_id=initiative_id))
    edit, child, grandchild = _propose(
        api,
        initiative_id,
        agent_id,
        {
            "target_type": PAGE,
            "target_id": root.id,
            "title": root.title,
            "content": "# Idea\n",
            "target_update_time": root.update_time,
        },
        {"key": "g", "target_type": PAGE, "title": "Glossary", "content": "terms"},
        {"key": "h", "target_type": PAGE, "title": "History", "parent": "g"},
    )
    _accept(api, grandchild, edit, child)
    pages = {p.title: p for p in api.pages.ListPages(page_pb2.ListPagesRequest(initiative_id=initiative_id)).pages}
    assert pages[root.title].content == "# Idea\n"
    assert pages["Glossary"].parent_page_id == root.id and pages["History"].parent_page_id == pages["Glossary"].id


def test_dismissed_proposals_are_not_accepted_and_accepted_ones_are_not_dismissed(
    api: SimpleNamespace, client_api: SimpleNamespace
) -> None:
    initiative_id, agent_id = _agent(api)
    kept, dropped = _propose(
        api,
        initiative_id,
        agent_id,
        {"key": "p1", "target_type": PHASE, "title": "Kept"},
        {"key": "p2", "target_type": PHASE, "title": "Dropped"},
    )
    dismissed = client_api.proposals.DismissProposals(pr.DismissProposalsRequest(proposal_ids=[dropped.id]))
    assert dismissed.proposals[0].status == pr.PROPOSAL_STATUS_DISMISSED
    refused = call_error(
        client_api.proposals.AcceptProposals, pr.AcceptProposalsRequest(proposal_ids=[kept.id, dropped.id])
    )
    assert refused.reason == "PROPOSAL_DISMISSED" and _phases(api, initiative_id) == {}
    client_api.proposals.AcceptProposals(pr.AcceptProposalsRequest(proposal_ids=[kept.id]))
    refused = call_error(client_api.proposals.DismissProposals, pr.DismissProposalsRequest(proposal_ids=[kept.id]))
    assert refused.reason == "PROPOSAL_ACCEPTED"
    forged = call_error(
        client_api.proposals.UpdateProposal,
        pr.UpdateProposalRequest(
            proposal=pr.Proposal(id=dropped.id, status=pr.PROPOSAL_STATUS_ACCEPTED),
            update_mask=field_mask_pb2.FieldMask(paths=["status"]),
        ),
    )
    assert forged.code == grpc.StatusCode.PERMISSION_DENIED


def test_undoing_a_chat_reply_dismisses_its_proposals_rather_than_reopening_them(api: SimpleNamespace) -> None:
    """`cw chat undo` used to put the reply's proposals back in the inbox as pending."""
    initiative_id, agent_id = _agent(api)
    session = api.chat_sessions.CreateChatSession(
        chat.CreateChatSessionRequest(
            chat_session=chat.ChatSession(
                target_type=chat.CHAT_TARGET_TYPE_PHASE, target_id="any", initiative_id=initiative_id
            )
        )
    )
    (proposal,) = _propose(api, initiative_id, agent_id, {"key": "p1", "target_type": PHASE, "title": "Split"})
    request = pr.AcceptProposalsRequest(proposal_ids=[proposal.id], chat_session_id=session.id)
    applied = api.proposals.AcceptProposals(request)
    api.chat_sessions.RevertChangeSet(chat.RevertChangeSetRequest(id=applied.change_set_id))
    assert _phases(api, initiative_id) == {}
    undone = api.proposals.GetProposal(pr.GetProposalRequest(id=proposal.id))
    assert undone.status == pr.PROPOSAL_STATUS_DISMISSED and not undone.entity_id
    assert undone.change_set_id == applied.change_set_id  # the trace: applied, then reverted
    pending = api.proposals.ListProposals(pr.ListProposalsRequest(status=pr.PROPOSAL_STATUS_PENDING)).proposals
    assert proposal.id not in {p.id for p in pending}
