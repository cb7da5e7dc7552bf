"""`cw plan INITIATIVE`: an agent reads the initiative's pages and proposes phases (a planning run:
clients/cli/planning_runs.py)."""

from __future__ import annotations

from clients.cli.planning_runs import initiative_subject, shortcut

plan = shortcut(
    "plan", "plan", "INITIATIVE", initiative_subject, "An agent reads the initiative's pages and proposes phases."
)
