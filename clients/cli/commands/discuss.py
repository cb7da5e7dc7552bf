"""`cw discuss INITIATIVE`: an agent asks you questions, then proposes page edits (a planning run:
clients/cli/planning_runs.py)."""

from __future__ import annotations

from clients.cli.planning_runs import initiative_subject, shortcut

discuss = shortcut(
    "discuss", "discuss", "INITIATIVE", initiative_subject, "An agent asks you questions, then proposes page edits."
)
