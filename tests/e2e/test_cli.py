"""`cw` run as a subprocess against real services, for every verb, in text and in JSON."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import field_mask_pb2

from cw.store.v1 import account_pb2, phase_pb2
from tests.e2e.cluster import Cluster, cluster, cw, cw_json, make_git_repo, script, wait_for

SECRET = "sk-ant-CLI-SECRET-77"


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("cli")) as running:
        yield running


def _setup(c: Cluster, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    repo = c.root / "user" / name
    make_git_repo(repo)
    project = cw_json(c, "project", "add", name, str(repo), "--default-branch", "main")
    initiative = cw_json(c, "initiative", "create", f"Initiative {name}", "--project", name)
    return project, initiative


def test_project_and_initiative(services: Cluster) -> None:
    c = services
    project, initiative = _setup(c, "alpha")
    assert project["name"] == "alpha" and project["defaultBranch"] == "main"
    assert initiative["branch"] == "cw/initiative-alpha"
    assert project["id"] in {p["id"] for p in cw_json(c, "project", "list")}
    assert "alpha" in cw(c, "project", "list").stdout
    assert initiative["id"] in {i["id"] for i in cw_json(c, "initiative", "list")}
    assert "Initiative alpha" in cw(c, "initiative", "list").stdout
    shown = cw_json(c, "initiative", "show", initiative["id"])
    assert shown["initiative"]["id"] == initiative["id"] and shown["phases"] == []


def test_phases_tasks_review_and_events(services: Cluster) -> None:
    c = services
    _, initiative = _setup(c, "beta")
    first = cw_json(c, "phase", "add", initiative["id"], "First")
    second = cw_json(c, "phase", "add", initiative["id"], "Second", "--after", first["id"])
    one = cw_json(c, "task", "add", first["id"], "one", "--description", script(files={"one.txt": "1"}))
    two = cw_json(
        c,
        "task",
        "add",
        first["id"],
        "two",
        "--after",
        one["id"],
        "--priority",
        "high",
        "--category",
        "verify",
        "--description",
        script(files={"two.txt": "2"}),
    )
    assert (two["priority"], two["category"]) == ("TASK_PRIORITY_HIGH", "TASK_CATEGORY_VERIFY")
    cw_json(c, "task", "add", second["id"], "three", "--description", script(files={"three.txt": "3"}))
    tree = cw(c, "initiative", "show", initiative["id"]).stdout
    assert "First" in tree and "one" in tree and "pending" in tree
    _check_after_edges_shown(c, initiative["id"], (second["id"], first["id"]), (two["id"], one["id"]))
    assert {t["id"] for t in cw_json(c, "task", "list", "--phase", first["id"])} == {one["id"], two["id"]}
    after_verb = json.loads(cw(c, "task", "list", "--json", "--phase", first["id"]).stdout)
    assert {t["id"] for t in after_verb} == {one["id"], two["id"]}
    assert cw_json(c, "phase", "approve", first["id"])["status"] == "PHASE_STATUS_APPROVED"
    cw(c, "phase", "approve", second["id"])
    watched = cw_json(c, "watch", initiative["id"])
    assert watched["reason"].startswith(f"phase First ({first['id']}) awaits review")
    completed = cw_json(c, "task", "list", "--phase", first["id"], "--status", "completed")
    assert {t["id"] for t in completed} == {one["id"], two["id"]}
    stat = cw(c, "phase", "diff", first["id"], "--stat").stdout
    assert "one.txt" in stat and "two.txt" in stat and "+1" in stat
    assert "+1" in cw(c, "phase", "diff", first["id"]).stdout
    diff = cw_json(c, "phase", "diff", first["id"])
    assert {f["path"] for f in diff["projects"][0]["files"]} == {"one.txt", "two.txt"}
    merged_line = cw(c, "phase", "merge", first["id"]).stdout
    merged = c.get_phase(first["id"])
    assert merged.status == phase_pb2.PHASE_STATUS_COMPLETED and len(merged.merge_commits) == 1
    commit = next(iter(merged.merge_commits.values()))
    assert merged_line.strip() == f"phase First merged: beta {commit[:10]}" and commit != merged.merge_base
    assert "awaits review" in cw(c, "watch", initiative["id"]).stdout
    events = cw_json(c, "events", "--type", "phase:completed")
    assert [e["phaseId"] for e in events] == [first["id"]]
    since = int(events[0]["sequence"])
    later = cw_json(c, "events", "--since", str(since))
    assert all(int(e["sequence"]) > since for e in later) and later
    text = cw(c, "events", "--type", "phase:started").stdout
    assert text.count("phase:started") == 2
    _check_event_filters(c, initiative["id"])
    follow = subprocess.Popen(
        [sys.executable, "-m", "clients.cli.main", "--json", "events", "--follow", "--type", "phase:completed"],
        stdout=subprocess.PIPE,
        text=True,
        env=c.client_env(),
    )
    try:
        assert follow.stdout is not None
        assert json.loads(follow.stdout.readline())["phaseId"] == first["id"]
    finally:
        follow.kill()
        follow.wait()


def _check_after_edges_shown(
    c: Cluster, initiative_id: str, phase_edge: tuple[str, str], task_edge: tuple[str, str]
) -> None:
    """`cw initiative show` names what each phase and task waits for (the `--after` edges)."""
    lines = cw(c, "initiative", "show", initiative_id).stdout.splitlines()
    assert "after: First" in next(line for line in lines if "Second" in line)
    assert "after: one" in next(line for line in lines if "two" in line)
    shown = cw_json(c, "initiative", "show", initiative_id)
    assert [(e["phaseId"], e["dependsOnPhaseId"]) for e in shown["phaseDependencies"]] == [phase_edge]
    assert [(e["taskId"], e["dependsOnTaskId"]) for e in shown["taskDependencies"]] == [task_edge]


def _check_event_filters(c: Cluster, initiative_id: str) -> None:
    """`--initiative`, agent output hidden unless asked for, unknown types refused with the list."""
    mine = cw_json(c, "events", "--initiative", initiative_id)
    assert mine and {e["initiativeId"] for e in mine} == {initiative_id}
    assert not any(e["type"].startswith("log_chunk:") for e in cw_json(c, "events"))
    output = cw_json(c, "events", "--type", "log_chunk:created")
    assert output and {e["type"] for e in output} == {"log_chunk:created"}
    spawned = cw(c, "--json", "events", "--type", "agent:spawned").stdout
    pids = [e["details"]["pid"] for e in json.loads(spawned)]
    assert pids and all(isinstance(pid, int) for pid in pids)
    assert not re.search(r'"pid": \d+\.', spawned)  # it said 18956.0
    assert {e["type"] for e in cw_json(c, "events", "--all")} >= {"log_chunk:created", "phase:completed"}
    refused = cw(c, "events", "--type", "phase:finished", check=False)
    assert refused.returncode == 2 and "unknown event type 'phase:finished'" in refused.stderr
    assert "known types: agent:spawned" in refused.stderr and "phase:completed" in refused.stderr


def test_agents_questions_stop_and_retry(services: Cluster) -> None:
    c = services
    _, initiative = _setup(c, "gamma")
    phase = cw_json(c, "phase", "add", initiative["id"], "P")
    asking = cw_json(
        c,
        "task",
        "add",
        phase["id"],
        "asking",
        "--description",
        script(questions=[{"id": "q1", "question": "Port?"}, {"id": "q2", "question": "Host?"}]),
    )
    stuck = cw_json(c, "task", "add", phase["id"], "stuck", "--description", script(wait_for=str(c.root / "never")))
    cw(c, "phase", "approve", phase["id"])
    waiting = wait_for("a waiting agent", lambda: cw_json(c, "agent", "list", "--status", "waiting_for_input"))
    agent = next(a for a in waiting if a["taskId"] == asking["id"])
    assert "waiting_for_input" in cw(c, "agent", "list").stdout
    assert cw_json(c, "agent", "show", agent["name"])["id"] == agent["id"]  # a name is as good as an id
    resumed = cw(c, "agent", "answer", agent["name"], input_text="8080\nlocalhost\n")
    assert "resumed" in resumed.stdout
    wait_for("the answered task", lambda: cw_json(c, "task", "list", "--status", "completed"))
    logs = cw(c, "agent", "logs", agent["name"]).stdout
    assert logs.count('"init"') == 2 and logs == cw(c, "agent", "logs", agent["id"]).stdout
    running = wait_for(
        "the stuck agent",
        lambda: [a for a in cw_json(c, "agent", "list", "--status", "running") if a["taskId"] == stuck["id"]],
    )[0]
    wait_for("the stuck agent's first output", lambda: '"init"' in cw(c, "agent", "logs", running["id"]).stdout)
    assert c.store is not None and c.orchestrator is not None
    following = subprocess.Popen(
        [sys.executable, "-m", "clients.cli.main", "agent", "logs", "-f", running["id"]],
        stdout=subprocess.PIPE,
        text=True,
        env=c.client_env(),
    )
    assert following.stdout is not None and '"init"' in following.stdout.readline()
    assert following.poll() is None  # still following the running agent
    assert cw_json(c, "agent", "stop", running["name"])["status"] == "AGENT_STATUS_STOPPED"
    assert following.wait(30) == 0  # ...and done once it stopped
    blocked = cw_json(c, "task", "list", "--status", "blocked")
    assert [t["id"] for t in blocked] == [stuck["id"]]
    shown = cw_json(c, "task", "show", stuck["id"])
    assert shown["task"]["status"] == "TASK_STATUS_BLOCKED" and shown["dependents"] == shown["dependsOn"] == []
    assert [a["id"] for a in shown["agents"]] == [running["id"]] and '"init"' in shown["output"][0]
    text = cw(c, "task", "show", stuck["id"]).stdout
    assert "stuck" in text and "blocked" in text and f"last output of agent {running['name']}" in text
    assert "its agent was stopped by a person" in text and re.search(rf"{running['name']} +stopped by you", text)
    assert "its agent was stopped by a person" in cw(c, "task", "list", "--status", "blocked").stdout
    watched = cw_json(c, "watch", initiative["id"])["reason"]
    assert watched.startswith(f"task stuck ({stuck['id']}) is blocked (its agent was stopped by a person)")
    assert re.search(rf"{agent['name']} +done", cw(c, "agent", "list").stdout)  # the answered agent finished
    assert "agent 'no-such-name' not found" in cw(c, "agent", "stop", "no-such-name", check=False).stderr
    assert "queued again" in cw(c, "task", "retry", stuck["id"]).stdout
    again = wait_for(
        "a new agent",
        lambda: [a for a in cw_json(c, "agent", "list", "--status", "running") if a["taskId"] == stuck["id"]],
    )[0]
    cw(c, "agent", "stop", again["id"])
    second_questions = cw_json(
        c, "task", "add", phase["id"], "asking again", "--description", script(questions=[{"id": "q", "question": "?"}])
    )
    waiting = wait_for(
        "the second question",
        lambda: [
            a
            for a in cw_json(c, "agent", "list", "--status", "waiting_for_input")
            if a["taskId"] == second_questions["id"]
        ],
    )[0]
    assert cw_json(c, "agent", "answer", waiting["id"], "--answer", "q=yes")["status"] == "AGENT_STATUS_RUNNING"


def test_accounts_never_show_credentials(services: Cluster, tmp_path: Path) -> None:
    c = services
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps({"token": SECRET}))
    config = tmp_path / "claude.json"
    config.write_text("{}")
    created = cw(
        c,
        "account",
        "add",
        "dev@example.com",
        "--provider",
        "nobody",
        "--credentials-file",
        str(credentials),
        "--config-file",
        str(config),
    )
    assert SECRET not in created.stdout
    listed = cw_json(c, "account", "list")
    assert listed[0]["email"] == "dev@example.com" and listed[0]["hasCredentials"]
    assert SECRET not in json.dumps(listed) and SECRET not in cw(c, "account", "list").stdout
    # A refused account (as the orchestrator marks one) is shown with its reason, and new
    # credentials put it back in rotation; neither shows the secret.
    refusal = account_pb2.Account(id=listed[0]["id"], unusable_reason="Invalid API key · Fix external API key")
    mask = field_mask_pb2.FieldMask(paths=["unusable_reason"])
    c.api.accounts.UpdateAccount(account_pb2.UpdateAccountRequest(account=refusal, update_mask=mask))
    assert "Invalid API key" in cw(c, "account", "list").stdout
    credentials.write_text(json.dumps({"token": SECRET + "-renewed"}))
    updated = cw(c, "account", "update", listed[0]["id"], "--credentials-file", str(credentials))
    assert SECRET not in updated.stdout
    [renewed] = cw_json(c, "account", "list")
    assert "unusableReason" not in renewed and SECRET not in json.dumps(renewed)


@pytest.mark.parametrize(
    "args",
    [
        ("task", "retry", "no-such-task"),
        ("phase", "approve", "no-such-phase"),
        ("initiative", "show", "no-such-initiative"),
        ("agent", "logs", "no-such-agent"),
    ],
)
def test_unknown_id_is_one_line_naming_it(services: Cluster, args: tuple[str, ...]) -> None:
    result = cw(services, *args, check=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and args[-1] in lines[0] and "not found" in lines[0]
    assert "Traceback" not in result.stderr


def test_unreachable_service_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "client.token").write_text("a token\n")
    result = subprocess.run(
        [sys.executable, "-m", "clients.cli.main", "--store", "127.0.0.1:9", "project", "list"],
        capture_output=True,
        text=True,
        env={**os.environ, "CW_TOKEN_FILE": str(tmp_path / "client.token")},
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "unavailable" in result.stderr
    assert (
        "cannot reach the store at 127.0.0.1:9" in result.stderr and "`make run` starts the services" in result.stderr
    )


def test_project_add_takes_a_path_relative_to_where_you_are(services: Cluster) -> None:
    c = services
    repo = make_git_repo(c.root / "user" / "relative")
    result = subprocess.run(
        [sys.executable, "-m", "clients.cli.main", "--json", "project", "add", "relative", "."],
        cwd=repo,
        env=c.client_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["url"] == str(repo.resolve())


def test_project_add_refuses_a_local_path_that_does_not_exist(services: Cluster) -> None:
    """It used to be accepted; the error appeared only when an initiative first cloned it."""
    c = services
    for missing in ("/does/not/exist", "file:///does/not/exist"):
        result = cw(c, "project", "add", "ghost", missing, check=False)
        assert result.returncode != 0 and "/does/not/exist is not a directory" in result.stderr
    assert "ghost" not in {p["name"] for p in cw_json(c, "project", "list")}
