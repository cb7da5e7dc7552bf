"""Every `cw` verb: where its command is defined, and the line `cw --help` shows for it.

`cw` imports a verb's module only when the verb is invoked (clients/cli/app.py, CwGroup), so that a
command pays for what it uses and nothing else (issue 28); `cw --help` lists the verbs from this
table without importing them. The short help is the first sentence of the command's own help:
tests/unit/test_cli_verbs.py fails, printing the line to write here, when the two differ or when a
verb is missing on either side.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Verb:
    """A command by where it is defined (`module:attribute`), imported when first used; `more`:
    commands another module adds to this group, as lazily."""

    target: str
    short_help: str
    more: dict[str, Verb] = field(default_factory=dict)


EDITS = "clients.cli.edits"

VERBS: dict[str, Verb] = {
    "account": Verb("clients.cli.agents:account", "Provider accounts, used round-robin."),
    "agent": Verb("clients.cli.agents:agent", "Agents: provider processes working on tasks."),
    "budget": Verb(
        "clients.cli.usage:budget",
        "Budgets: a task's run is stopped past its budget; an initiative past its own starts nothing more.",
    ),
    "chat": Verb(
        "clients.cli.chat:chat",
        "Refine a phase or a task with an agent, message by message; each reply's changes can be undone.",
    ),
    "conversations": Verb("clients.cli.inbox:conversations", "What agents asked each other, and what they answered."),
    "discuss": Verb("clients.cli.planning:discuss", "An agent asks you questions, then proposes page edits."),
    "events": Verb(
        "clients.cli.live:events",
        "The event log: replayed from --since, then followed with --follow (JSON lines with --json).",
    ),
    "inbox": Verb(
        "clients.cli.inbox:inbox",
        "Everything that waits for you, newest first, each with the command that handles it.",
    ),
    "initiative": Verb(
        "clients.cli.work:initiative",
        "Initiatives: the top of the work tree.",
        {
            "deliver": Verb(
                f"{EDITS}:initiative_deliver",
                "Push the initiative branch into each project's own repository as a branch of the same name (your "
                "checked-out branch is never touched), and mark the initiative COMPLETED.",
            ),
            "diff": Verb(
                f"{EDITS}:initiative_diff",
                "The initiative branch against each project's default branch: what `deliver` would bring.",
            ),
        },
    ),
    "page": Verb(
        "clients.cli.planning:page",
        "Pages: an initiative's living spec, a tree of markdown documents under its root page.",
    ),
    "phase": Verb(
        "clients.cli.work:phase",
        "Phases: groups of tasks, reviewed as one diff.",
        {
            "delete": Verb(
                f"{EDITS}:phase_delete",
                "Delete a phase with its tasks and comments (refused while an agent works on one of them).",
            ),
            "detail": Verb(
                "clients.cli.planning:phase_detail", "An agent proposes the phase's tasks, with their dependencies."
            ),
            "edit": Verb(f"{EDITS}:phase_edit", "Change a phase (refused while an agent works on one of its tasks)."),
        },
    ),
    "plan": Verb("clients.cli.planning:plan", "An agent reads the initiative's pages and proposes phases."),
    "project": Verb(
        "clients.cli.work:project",
        "Git repositories that initiatives work on.",
        {
            "edit": Verb(
                f"{EDITS}:project_edit",
                "Change a project (refused while an agent works in it): a url that failed to sync, fixed.",
            ),
            "remove": Verb(
                f"{EDITS}:project_remove",
                "Forget a project (your repository is not touched; refused while an agent works in it).",
            ),
        },
    ),
    "proposals": Verb(
        "clients.cli.planning:proposals",
        "What planning agents proposed: a tree of phases and tasks, page edits as diffs.",
    ),
    "reply": Verb("clients.cli.inbox:reply", "Answer an agent's message (it leaves the inbox)."),
    "review": Verb(
        "clients.cli.review:review", "Review comments on a phase's diff, and sending the phase back with them."
    ),
    "task": Verb(
        "clients.cli.tasks:task",
        "Tasks: one agent's piece of work.",
        {
            "delete": Verb(
                f"{EDITS}:task_delete",
                "Delete a task and its dependency edges (refused while an agent works on it).",
            ),
            "edit": Verb(f"{EDITS}:task_edit", "Change a task (refused while an agent works on it)."),
            "move": Verb(f"{EDITS}:task_move", "Move a task to another phase of its initiative."),
        },
    ),
    "usage": Verb(
        "clients.cli.usage:usage",
        "Tokens and cost per task, phase, initiative, account or provider, as the agents' CLIs reported them.",
    ),
    "watch": Verb(
        "clients.cli.watch:watch",
        "A live view of an initiative, until it needs a person (review, question, blocked task) or is done.",
    ),
    "web": Verb("clients.web.command:web", "cw in the browser: serves the pages and prints a one-time login link."),
}
