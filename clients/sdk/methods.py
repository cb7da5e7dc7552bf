"""Every unary method of the services the SDK calls, by service: what the channels' retry and
deadline configuration names (clients/sdk/channel.py), written out so that making a channel imports
no generated module (a command that makes one call imports that call's module only: tests/e2e/test_cli_imports.py).

Made from the generated code by `python -m clients.sdk.methods` (`make proto` runs it);
tests/unit/test_cli_verbs.py fails when it no longer matches the generated code.
"""

from __future__ import annotations

import importlib
from pathlib import Path

# The store's services the SDK calls (every one but the orchestrators' LeaseService).
STORE_SERVICES = (
    "account",
    "agent",
    "chat_session",
    "conversation",
    "event",
    "initiative",
    "log_chunk",
    "message",
    "page",
    "phase",
    "project",
    "proposal",
    "review_comment",
    "task",
)
GENERATED = {"store": [f"cw.store.v1.{name}_pb2" for name in STORE_SERVICES]}
GENERATED["orchestrator"] = ["cw.orchestrator.v1.orchestrator_pb2"]

# ---- written by `python -m clients.sdk.methods` from here on
UNARY_METHODS: dict[str, dict[str, tuple[str, ...]]] = {
    "store": {
        "cw.store.v1.AccountService": (
            "CreateAccount",
            "GetAccount",
            "ListAccounts",
            "UpdateAccount",
            "DeleteAccount",
            "GetNextAvailableAccount",
            "MarkAccountExhausted",
            "ClearExpiredExhaustion",
            "GetAccountSecrets",
        ),
        "cw.store.v1.AgentService": (
            "CreateAgent",
            "GetAgent",
            "ListAgents",
            "UpdateAgent",
            "DeleteAgent",
            "SumAgentUsage",
        ),
        "cw.store.v1.ChatSessionService": (
            "CreateChatSession",
            "GetChatSession",
            "GetActiveChatSession",
            "GetActiveChatSessionByAgent",
            "UpdateChatSession",
            "CreateChatMessage",
            "ListChatMessages",
            "ApplyChangeSet",
            "GetChangeSet",
            "ListChangeSets",
            "RevertChangeSet",
        ),
        "cw.store.v1.ConversationService": (
            "CreateConversation",
            "GetConversation",
            "ListPendingConversations",
            "AnswerConversation",
            "ListConversations",
        ),
        "cw.store.v1.EventService": (
            "ListEvents",
            "AppendEvent",
        ),
        "cw.store.v1.InitiativeService": (
            "CreateInitiative",
            "GetInitiative",
            "ListInitiatives",
            "UpdateInitiative",
            "DeleteInitiative",
        ),
        "cw.store.v1.LogChunkService": (
            "CreateLogChunk",
            "ListLogChunks",
            "DeleteLogChunks",
            "GetSessionCount",
        ),
        "cw.store.v1.MessageService": (
            "CreateMessage",
            "GetMessage",
            "ListMessages",
            "UpdateMessage",
            "DeleteMessage",
        ),
        "cw.store.v1.PageService": (
            "CreatePage",
            "GetPage",
            "ListPages",
            "UpdatePage",
            "DeletePage",
            "GetRootPage",
            "GetOrCreateRootPage",
        ),
        "cw.store.v1.PhaseService": (
            "CreatePhase",
            "GetPhase",
            "ListPhases",
            "UpdatePhase",
            "DeletePhase",
            "CreatePhaseDependency",
            "ListPhaseDependencies",
            "ListPhaseDependents",
        ),
        "cw.store.v1.ProjectService": (
            "CreateProject",
            "GetProject",
            "ListProjects",
            "UpdateProject",
            "DeleteProject",
            "SetInitiativeProjects",
            "ListInitiativeProjects",
        ),
        "cw.store.v1.ProposalService": (
            "CreateProposal",
            "GetProposal",
            "ListProposals",
            "UpdateProposal",
            "DeleteProposal",
            "UpdateAgentProposals",
            "CountProposals",
            "AcceptProposals",
            "DismissProposals",
        ),
        "cw.store.v1.ReviewCommentService": (
            "CreateReviewComment",
            "GetReviewComment",
            "ListReviewComments",
            "ResolveReviewComment",
            "UnresolveReviewComment",
            "DeleteReviewComment",
        ),
        "cw.store.v1.TaskService": (
            "CreateTask",
            "GetTask",
            "ListTasks",
            "UpdateTask",
            "DeleteTask",
            "CreateTaskDependency",
            "ListTaskDependencies",
        ),
    },
    "orchestrator": {
        "cw.orchestrator.v1.OrchestratorService": (
            "ApprovePhase",
            "DispatchTask",
            "GetPhaseDiff",
            "MergePhase",
            "RequestChanges",
            "GetInitiativeDiff",
            "DeliverInitiative",
            "RetryBlockedTask",
            "StopAgent",
            "AnswerQuestions",
            "SendChatMessage",
            "GetUsage",
        ),
    },
}
# ---- end of what it writes


def from_generated_code() -> dict[str, dict[str, tuple[str, ...]]]:
    """Per SDK service ("store", "orchestrator"): each gRPC service's unary methods, as the
    generated modules describe them."""
    found: dict[str, dict[str, tuple[str, ...]]] = {}
    for client, modules in GENERATED.items():
        services = found.setdefault(client, {})
        for name in modules:
            for service in importlib.import_module(name).DESCRIPTOR.services_by_name.values():
                unary = tuple(method.name for method in service.methods if not method.server_streaming)
                services[service.full_name] = unary
    return found


def source(methods: dict[str, dict[str, tuple[str, ...]]]) -> str:
    """The table as this module writes it (as ruff formats it)."""
    lines = ["UNARY_METHODS: dict[str, dict[str, tuple[str, ...]]] = {"]
    for client, services in methods.items():
        lines.append(f'    "{client}": {{')
        for service, names in services.items():
            lines.append(f'        "{service}": (')
            lines += [f'            "{name}",' for name in names]
            lines.append("        ),")
        lines.append("    },")
    lines.append("}")
    return "\n".join(lines) + "\n"


def rewrite(path: Path) -> None:
    text = path.read_text()
    start = text.index("UNARY_METHODS: dict")
    end = text.index("# ---- end of what it writes")
    path.write_text(text[:start] + source(from_generated_code()) + text[end:])


if __name__ == "__main__":
    rewrite(Path(__file__))
