"""Every `cw` verb: where its command is defined, and the line `cw --help` shows for it.

`cw` imports a verb's module only when the verb is invoked (clients/cli/app.py, CwGroup), so that a
command pays for what it uses and nothing else (tests/e2e/test_cli_imports.py, bench/cli_startup.py);
`cw --help` lists the verbs from this table without importing them. `cw NAME` is the command `NAME`
of clients/cli/commands/NAME.py, every command under it defined there too (`cw web`:
clients/web/command.py). The short help is the first sentence of the command's own help:
tests/unit/test_cli_verbs.py fails, printing the line to write here, when the two differ or when a
verb is missing on either side.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verb:
    """A command by where it is defined (`module:attribute`), imported when first used."""

    target: str
    short_help: str


def verb(name: str, short_help: str) -> Verb:
    """The verb `cw NAME`, defined as `NAME` in clients/cli/commands/NAME.py."""
    return Verb(f"clients.cli.commands.{name}:{name}", short_help)


VERBS: dict[str, Verb] = {
    "account": verb("account", "Provider accounts, used round-robin."),
    "agent": verb("agent", "Agents: provider processes working on tasks."),
    "budget": verb(
        "budget", "Budgets: a task's run is stopped past its budget; an initiative past its own starts nothing more."
    ),
    "chat": verb(
        "chat", "Refine a phase or a task with an agent, message by message; each reply's changes can be undone."
    ),
    "conversations": verb("conversations", "What agents asked each other, and what they answered."),
    "discuss": verb("discuss", "An agent asks you questions, then proposes page edits."),
    "events": verb(
        "events", "The event log: replayed from --since, then followed with --follow (JSON lines with --json)."
    ),
    "inbox": verb("inbox", "Everything that waits for you, newest first, each with the command that handles it."),
    "initiative": verb("initiative", "Initiatives: the top of the work tree."),
    "page": verb("page", "Pages: an initiative's living spec, a tree of markdown documents under its root page."),
    "phase": verb("phase", "Phases: groups of tasks, reviewed as one diff."),
    "plan": verb("plan", "An agent reads the initiative's pages and proposes phases."),
    "project": verb("project", "Git repositories that initiatives work on."),
    "proposals": verb("proposals", "What planning agents proposed: a tree of phases and tasks, page edits as diffs."),
    "reply": verb("reply", "Answer an agent's message (it leaves the inbox)."),
    "review": verb("review", "Review comments on a phase's diff, and sending the phase back with them."),
    "task": verb("task", "Tasks: one agent's piece of work."),
    "usage": verb(
        "usage", "Tokens and cost per task, phase, initiative, account or provider, as the agents' CLIs reported them."
    ),
    "watch": verb(
        "watch", "A live view of an initiative, until it needs a person (review, question, blocked task) or is done."
    ),
    "web": Verb("clients.web.command:web", "cw in the browser: serves the pages and prints a one-time login link."),
}
