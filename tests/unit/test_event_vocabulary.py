"""Automatic events name every stored status by its API enum name."""

from __future__ import annotations

from sqlalchemy import Enum

from store_service.api.convert import enum_name
from store_service.db.change_events import STATUS_ENUMS
from store_service.db.models import Base


def test_every_status_of_every_table_has_its_api_name() -> None:
    with_status = {mapper.class_ for mapper in Base.registry.mappers if "status" in mapper.columns}
    assert with_status == set(STATUS_ENUMS)
    for model, enum in STATUS_ENUMS.items():
        column_type = model.__mapper__.columns["status"].type
        assert isinstance(column_type, Enum)
        for value in column_type.enums:
            assert enum_name(enum, value) in enum.values_by_name, (model.__name__, value)
