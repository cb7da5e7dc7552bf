"""The edge's pure parts: the descriptor-driven request check, the limits table, the name rules of
paths and git arguments, and the size-bounded page."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import struct_pb2, timestamp_pb2

import cw.store.v1
from cw.store.v1 import account_pb2, chat_session_pb2, event_pb2, phase_pb2, project_pb2, task_pb2
from store_service.api import limits, pagination, validation
from store_service.domain import rules
from store_service.domain.errors import InvalidArgument


def _violations(message: Any) -> list[tuple[str, str]]:
    with pytest.raises(InvalidArgument) as raised:
        validation.check_message(message)
    return [(v.field, v.description) for v in raised.value.violations]


def _fields(message: Any) -> list[str]:
    return [field for field, _ in _violations(message)]


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(-(10**12), 0), (253_402_300_800, 0), (0, -1), (0, 1_000_000_000), (2**62, 5)],
)
def test_timestamps_out_of_range_name_their_field(seconds: int, nanos: int) -> None:
    stamp = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    task = task_pb2.Task(name="t")
    task.create_time.CopyFrom(stamp)
    assert _fields(task_pb2.CreateTaskRequest(task=task)) == ["task.create_time"]
    until = account_pb2.MarkAccountExhaustedRequest(id="a")
    until.until.CopyFrom(stamp)
    assert _fields(until) == ["until"]


def test_timestamps_at_the_ends_of_the_range_pass() -> None:
    for seconds, nanos in ((-62_135_596_800, 0), (253_402_300_799, 999_999_999)):
        request = account_pb2.MarkAccountExhaustedRequest(id="a")
        request.until.seconds, request.until.nanos = seconds, nanos
        validation.check_message(request)


def test_unknown_enum_numbers_anywhere_name_their_field() -> None:
    assert _fields(chat_session_pb2.GetActiveChatSessionRequest(target_type=7)) == ["target_type"]  # type: ignore[arg-type]
    listing = task_pb2.ListTasksRequest(statuses=[1, 99])  # type: ignore[list-item]
    assert _fields(listing) == ["statuses[1]"]
    apply = chat_session_pb2.ApplyChangeSetRequest(
        changes=[chat_session_pb2.ChangeSetEntry(), chat_session_pb2.ChangeSetEntry(entity_type=3, action=12)]  # type: ignore[arg-type]
    )
    assert _fields(apply) == ["changes[1].action"]
    nested = event_pb2.AppendEventRequest(
        changes=[event_pb2.StateChange(update_task=task_pb2.UpdateTaskRequest(task=task_pb2.Task(priority=-4)))]  # type: ignore[arg-type]
    )
    assert _fields(nested) == ["changes[0].update_task.task.priority"]


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinity_in_structs_name_the_path(number: float) -> None:
    details = struct_pb2.Struct()
    details.update({"ok": 1, "deep": {"list": [1, {"cost": number}]}})
    request = event_pb2.AppendEventRequest(events=[event_pb2.Event(type="x:y", details=details)])
    assert _fields(request) == ["events[0].details.deep.list[1].cost"]


def test_strings_holding_nul_name_their_field_anywhere() -> None:
    assert _fields(account_pb2.GetNextAvailableAccountRequest(provider="\x00")) == ["provider"]
    task = task_pb2.Task(name="ok", description="a\x00b")
    assert _fields(task_pb2.CreateTaskRequest(task=task)) == ["task.description"]
    depends = task_pb2.CreateTaskRequest(task=task_pb2.Task(name="t"), depends_on_task_ids=["a", "b\x00"])
    assert _fields(depends) == ["depends_on_task_ids[1]"]


def test_sizes_over_the_limits_are_refused_with_the_limit_named() -> None:
    assert _violations(task_pb2.CreateTaskRequest(task=task_pb2.Task(name="n" * 250))) == [
        ("task.name", "is 250 characters; at most 200 characters")
    ]
    assert _fields(project_pb2.CreateProjectRequest(project=project_pb2.Project(name="p" * 101, url="/r"))) == [
        "project.name"
    ]
    big = task_pb2.Task(name="t", description="é" * (limits.MIB // 2 + 1))
    assert _fields(task_pb2.CreateTaskRequest(task=big)) == ["task.description"]
    details = struct_pb2.Struct()
    details.update({"blob": "x" * (64 * limits.KIB)})
    assert _fields(event_pb2.AppendEventRequest(events=[event_pb2.Event(type="t", details=details)])) == [
        "events[0].details"
    ]
    assert _fields(task_pb2.GetTaskRequest(id="i" * 129)) == ["id"]
    assert _fields(task_pb2.ListTaskDependenciesRequest(task_ids=["t"] * 1001)) == ["task_ids"]
    phase = phase_pb2.Phase(name="p")
    phase.merge_commits["project"] = "c" * 1025
    assert _fields(phase_pb2.UpdatePhaseRequest(phase=phase)) == ["phase.merge_commits[project]"]


def test_at_most_a_few_violations_are_reported() -> None:
    request = event_pb2.AppendEventRequest(events=[event_pb2.Event(type="t" * 300) for _ in range(50)])
    assert len(_violations(request)) == validation.MAX_REPORTED


def test_bytes_that_are_no_message_are_invalid_argument() -> None:
    with pytest.raises(InvalidArgument) as raised:
        validation.parse_request(b"\x0a\x02\xff\xfe", task_pb2.GetTaskRequest.FromString)
    assert raised.value.metadata == {"field": "request"}


def _resource_messages() -> list[Any]:
    """Every message of cw.store.v1 that is a stored row: it has an `id` and a `create_time`."""
    found = []
    for module_info in pkgutil.iter_modules(cw.store.v1.__path__):
        if module_info.name.endswith("_pb2"):
            module = importlib.import_module(f"cw.store.v1.{module_info.name}")
            found += [
                message
                for message in module.DESCRIPTOR.message_types_by_name.values()
                if {"id", "create_time"} <= set(message.fields_by_name)
            ]
    return found


def _largest_size(message: Any) -> int:
    """The most bytes a row of this message can take when each field is at its limit."""
    total = 0
    for field in message.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            entry = field.message_type
            item = sum(_field_bytes(entry.name, entry.fields_by_name[name]) for name in ("key", "value"))
            total += limits.MAX_ITEMS * item
        else:
            total += (limits.MAX_ITEMS if field.is_repeated else 1) * _field_bytes(message.name, field)
    return total


def _field_bytes(owner: str, field: Any) -> int:
    if field.type not in (field.TYPE_STRING, field.TYPE_BYTES):
        return 32
    limit = limits.field_limit(owner, field.name, False)
    assert limit is not None
    return limit.size * (4 if limit.unit == "characters" else 1)


def test_one_row_at_its_limits_fits_in_a_page() -> None:
    """A list page always holds at least one row: so no row may outgrow the page budget. A change
    set's entries are capped as a whole when it is applied (limits.CHANGE_SET)."""
    rows = [message for message in _resource_messages() if message.name != "ChangeSet"]
    assert {"Task", "Phase", "Page", "Proposal", "Account", "LogChunk"} <= {message.name for message in rows}
    for message in rows:
        assert _largest_size(message) < limits.PAGE_BYTES, message.name
    assert limits.CHANGE_SET.size < limits.PAGE_BYTES


@pytest.mark.parametrize(
    "name", ["../../../../../../var/x", "/var/y", ".hidden", "-rf", "a/b", "..", "a..b", "tab\there", "", "ü"]
)
def test_project_names_that_are_not_one_safe_path_component_are_refused(name: str) -> None:
    assert rules.project_name_problem(name) is not None


@pytest.mark.parametrize("name", ["app", "my-app_2", "App.v2", "_internal", "x" * 100])
def test_ordinary_project_names_pass(name: str) -> None:
    assert rules.project_name_problem(name) is None


@pytest.mark.parametrize(
    "url",
    [
        "--upload-pack=touch pwned://x",
        "-oProxyCommand=x",
        "ssh://-oProxyCommand=touch%20x/repo",
        "git@-oProxyCommand=x:repo",
        "ext::sh -c touch% pwned",
        "fd::17",
        "pwned://x",
        "relative/path",
        "~/src/app",
        "/srv/app\nmore",
    ],
)
def test_urls_that_git_could_misread_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        rules.project_url(url)


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        ("/srv/app/", "/srv/app"),
        ("/srv//app/./", "/srv/app"),
        ("//srv/app", "/srv/app"),
        ("/srv/x/../app", "/srv/app"),
        ("file:///srv/app/", "file:///srv/app"),
        ("https://example.com/org/repo.git", "https://example.com/org/repo.git"),
        ("git@example.com:org/repo.git", "git@example.com:org/repo.git"),
    ],
)
def test_urls_are_stored_normalised(url: str, stored: str) -> None:
    assert rules.project_url(url) == stored


@pytest.mark.parametrize(
    "branch",
    ["HEAD", "main", "master", "refs/heads/main", "refs", "cw-task/x", "cw-phase/y", "cw-task", "main/feature", "-x"],
)
def test_initiative_branches_outside_the_reserved_names_only(branch: str) -> None:
    assert rules.initiative_branch_problem(branch, []) is not None


def test_initiative_branch_may_not_collide_with_a_project_default_branch() -> None:
    assert rules.initiative_branch_problem("develop", ["develop"]) is not None
    assert rules.initiative_branch_problem("trunk/x", ["trunk"]) is not None
    assert rules.initiative_branch_problem("cw/user-auth", ["main", "develop"]) is None


@pytest.mark.parametrize("branch", ["-b", "a..b", "a b", "x\x01", "HEAD", "a.lock", "a/", "@", "a:b"])
def test_default_branches_are_git_branch_names(branch: str) -> None:
    assert rules.branch_problem(branch) is not None


def _message(size: int) -> Any:
    return task_pb2.Task(description="d" * size)


def test_a_page_stops_before_its_byte_budget_but_holds_at_least_one_row() -> None:
    page = pagination.SizedPage(limit=1000, budget=1000)
    assert page.offer(_message(2000), 1)
    assert not page.offer(_message(10), 2) and page.more and page.last == 1
    page = pagination.SizedPage(limit=1000, budget=1000)
    assert page.offer(_message(400), 1) and page.offer(_message(400), 2)
    assert not page.offer(_message(400), 3)
    assert (len(page.messages), page.last, page.more) == (2, 2, True)


def test_a_page_stops_at_its_row_count() -> None:
    page = pagination.SizedPage(limit=2)
    assert page.offer(_message(1), "a") and page.offer(_message(1), "b")
    assert not page.offer(_message(1), "c") and page.more and page.last == "b"


def test_reads_shrink_to_what_may_still_fit() -> None:
    page = pagination.SizedPage(limit=1000, budget=3 * limits.MIB)
    assert page.rows_to_read() == pagination.FIRST_READ + 1
    page.offer(_message(limits.MIB), 1)
    assert page.rows_to_read() == 2  # one more such row may fit, and one to see what follows
    small = pagination.SizedPage(limit=1000)
    small.offer(_message(10), 1)
    assert small.rows_to_read() == pagination.MAX_READ + 1
    assert pagination.SizedPage(limit=1).rows_to_read() == 2


def test_docs_list_every_limit_of_the_table() -> None:
    """docs/api.md's limits table says what limits.py enforces, field by field."""
    docs = (Path(__file__).parents[2] / "docs" / "api.md").read_text()
    section = docs[docs.index("## Input checks and limits") :]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    for key, limit in limits.FIELD_LIMITS.items():
        row = next((line for line in rows if f"`{key}`" in line), None)
        assert row is not None and row.endswith(f"| {limit.describe()} |"), key
    for default, name in ((limits.IDENTIFIER, "`id`"), (limits.DEFAULT_TEXT, "any other string")):
        assert any(name in line and line.endswith(f"| {default.describe()} |") for line in rows), name
    assert any(line.endswith(f"| {limits.MAX_ITEMS} |") for line in rows)
    assert any(line.endswith(f"| {limits.CHANGE_SET.describe()} |") for line in rows)
