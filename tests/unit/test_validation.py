"""Request validation as properties: bad input is InvalidArgument naming the field, never a crash."""

from __future__ import annotations

import string
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cw.store.v1 import agent_pb2, task_pb2
from store_service.api import convert, pagination
from store_service.db.models import Agent, Task, new_id
from store_service.db.views import PageCursor
from store_service.domain.errors import InvalidArgument

STATUS = task_pb2.TaskStatus.DESCRIPTOR
URL_SAFE = set(string.ascii_letters + string.digits + "-_")


@given(st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_enum_numbers_map_or_are_rejected(number: int) -> None:
    try:
        stored = convert.enum_to_db(STATUS, number)
    except ValueError:
        assert number not in STATUS.values_by_number
        return
    if number == 0:
        assert stored is None
    else:
        assert stored is not None and convert.enum_from_db(STATUS, stored) == number


@given(st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_page_size_is_clamped_or_rejected(requested: int) -> None:
    if requested < 0:
        with pytest.raises(InvalidArgument):
            pagination.page_size(requested)
    else:
        size = pagination.page_size(requested)
        assert 1 <= size <= pagination.MAX_PAGE_SIZE
        assert size in (requested or pagination.DEFAULT_PAGE_SIZE, pagination.MAX_PAGE_SIZE)


@given(st.text(max_size=200))
def test_arbitrary_page_tokens_never_crash(token: str) -> None:
    try:
        pagination.decode_token(token, {"phase_id": "p"})
    except InvalidArgument as error:
        assert [v.field for v in error.violations] == ["page_token"]


@given(st.datetimes(), st.text(min_size=1, max_size=21), st.dictionaries(st.text(max_size=5), st.text(max_size=5)))
def test_tokens_round_trip_for_the_same_filters(when: datetime, row_id: str, filters: dict[str, str]) -> None:
    cursor = PageCursor(when, row_id)
    assert pagination.decode_token(pagination.encode_token(cursor, filters), filters) == cursor


@given(
    st.builds(
        task_pb2.Task,
        name=st.text(max_size=20),
        status=st.integers(min_value=0, max_value=9),
        priority=st.integers(min_value=0, max_value=5),
        order=st.integers(min_value=-(2**31), max_value=2**31 - 1),
    )
)
def test_create_values_are_valid_or_invalid_argument(task: task_pb2.Task) -> None:
    try:
        values = convert.values_for_create(task, Task, "task")
    except InvalidArgument as error:
        fields = {v.field for v in error.violations}
        assert fields <= {"task.name", "task.status", "task.priority"}
        return
    assert values["name"] == task.name
    assert set(values) <= set(Task.__mapper__.columns.keys())


def test_row_round_trip_keeps_every_field() -> None:
    agent = Agent(
        id="a" * 21,
        name="brave-otter",
        worktree_id="/w",
        status="waiting_for_input",
        mode="plan",
        pid=0,
        exit_code=None,
        create_time=datetime(2026, 1, 2, 3, 4, 5, 678000),
        update_time=datetime(2026, 1, 2, 3, 4, 6),
    )
    message = convert.to_message(agent, agent_pb2.Agent)
    assert message.status == agent_pb2.AGENT_STATUS_WAITING_FOR_INPUT and message.mode == agent_pb2.AGENT_MODE_PLAN
    assert message.HasField("pid") and message.pid == 0 and not message.HasField("exit_code")
    assert message.create_time.ToDatetime(tzinfo=UTC) == datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    values = convert.values_for_create(message, Agent, "agent")
    assert (values["status"], values["pid"], values["mode"]) == ("waiting_for_input", 0, "plan")


def test_output_only_fields_cannot_be_updated() -> None:
    with pytest.raises(InvalidArgument) as raised:
        convert.values_for_update(task_pb2.Task(id="x"), Task, "task", ["create_time"])
    assert raised.value.violations[0].field == "update_mask"


def test_ids_are_21_url_safe_characters_never_starting_like_an_option() -> None:
    ids = {new_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(len(i) == 21 and i[0].isalnum() and set(i) <= URL_SAFE for i in ids)
