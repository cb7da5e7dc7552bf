"""`cw` imports what the verb uses and nothing else: measured without a clock, by what is
in `sys.modules` when a real `cw` command, run against a real store, exits.

The command runs as `python -m clients.cli.main` does (runpy, as `__main__`), with an exit hook
that writes the names of the modules imported. How long a command takes against the least its
calls need is bench/cli_startup.py's business.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cw.store.v1 import initiative_pb2
from cw_edge.tokens import AUTH_ENVIRONMENT, Identity
from tests.support import authorized_channel, start_store_process, stubs, tokens_in

RUN_CW_AND_LIST_MODULES = """
import atexit, runpy, sys
listing = sys.argv.pop(1)
atexit.register(lambda: open(listing, "w").write("\\n".join(sorted(sys.modules))))
runpy.run_module("clients.cli.main", run_name="__main__", alter_sys=True)
"""
COMMANDS = Path(__file__).resolve().parents[2] / "clients" / "cli" / "commands"
# The modules of the verbs, and what only some verbs share.
COMMAND_MODULES = {f"clients.cli.commands.{path.stem}" for path in COMMANDS.glob("*.py") if path.stem != "__init__"} | {
    "clients.cli.diff_views",
    "clients.cli.planning_runs",
    "clients.cli.planning_views",
    "clients.web.command",
}
INBOX_SERVICES = {"account", "agent", "initiative", "message", "phase", "project", "proposal", "task"}


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A person's environment for `cw`, against a store holding one initiative."""
    root = tmp_path_factory.mktemp("cli-imports")
    store = start_store_process(root / "store.db", root / "store.log", auth_dir=root / "auth")
    try:
        with authorized_channel(store.address, tokens_in(root / "auth")[Identity.CLIENT]) as channel:
            stubs(channel).initiatives.CreateInitiative(
                initiative_pb2.CreateInitiativeRequest(initiative=initiative_pb2.Initiative(name="imports"))
            )
        inherited = {name: value for name, value in os.environ.items() if name not in AUTH_ENVIRONMENT}
        yield {**inherited, "CW_HOME": str(root), "CW_STORE": store.address, "CW_ORCHESTRATOR": "127.0.0.1:9"}
    finally:
        store.kill()


def imported_by(environment: dict[str, str], tmp_path: Path, *arguments: str) -> tuple[set[str], str]:
    """The modules `cw ARGUMENTS` had imported when it exited, and what it printed."""
    listing = tmp_path / "modules.txt"
    ran = subprocess.run(
        [sys.executable, "-c", RUN_CW_AND_LIST_MODULES, str(listing), *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    return set(listing.read_text().split()), ran.stdout


def generated(modules: set[str]) -> set[str]:
    """The generated modules among `modules`: `task_pb2`, `task_pb2_grpc`, `orchestrator_pb2`..."""
    return {name.rsplit(".", 1)[1] for name in modules if name.startswith(("cw.store.v1.", "cw.orchestrator.v1."))}


def test_listing_tasks_as_json_imports_the_task_service_and_nothing_to_render(
    environment: dict[str, str], tmp_path: Path
) -> None:
    modules, printed = imported_by(environment, tmp_path, "task", "list", "--json")
    assert printed.strip() == "[]"
    assert not {name for name in modules if name.split(".")[0] == "rich"}
    assert modules & COMMAND_MODULES == {"clients.cli.commands.task"}
    assert generated(modules) == {"task_pb2", "task_pb2_grpc"}
    # A failed call's details are read only when a call fails; the orchestrator's client when used.
    assert not {"grpc_status.rpc_status", "clients.sdk.orchestrator"} & modules


def test_the_same_list_for_people_imports_rich_for_its_table(environment: dict[str, str], tmp_path: Path) -> None:
    modules, printed = imported_by(environment, tmp_path, "task", "list")
    assert printed.startswith("ID ")
    assert {"rich.console", "rich.table"} <= modules
    assert "google.protobuf.json_format" not in modules
    assert generated(modules) == {"task_pb2", "task_pb2_grpc"}


def test_the_inbox_imports_the_services_it_reads(environment: dict[str, str], tmp_path: Path) -> None:
    modules, printed = imported_by(environment, tmp_path, "inbox", "--json")
    assert printed.strip() == "[]"
    assert not {name for name in modules if name.split(".")[0] == "rich"}
    assert modules & COMMAND_MODULES == {"clients.cli.commands.inbox"}
    assert generated(modules) == {f"{service}_pb2{stub}" for service in INBOX_SERVICES for stub in ("", "_grpc")}


def test_help_lists_every_verb_without_importing_one(environment: dict[str, str], tmp_path: Path) -> None:
    modules, printed = imported_by(environment, tmp_path, "--help")
    assert "inbox" in printed and "watch" in printed and "web" in printed
    assert not modules & COMMAND_MODULES
    assert not generated(modules)
    assert not {name for name in modules if name.split(".")[0] == "rich"}
    assert not {"clients.sdk.store", "clients.sdk.orchestrator"} & modules
