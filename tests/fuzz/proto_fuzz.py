"""Arbitrary requests for any gRPC service, built from its proto descriptors alone.

Nothing here names a cw message or RPC: point `fuzz_services` at the service descriptors of any
package and a channel, and every unary and server-streaming method is called with requests
hypothesis draws field by field: out-of-range timestamps and durations, enum numbers the enum does
not define, NaN and infinities (in doubles and in google.protobuf.Struct), huge and tiny strings,
names shaped like paths, options and git refs, random ids and the ids of real rows (harvested from
earlier answers), repeated fields over the item limit, and now and then raw bytes that are no
message at all. It returns how many calls ended with each status code, and fails on a code that
only a bug can give.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import message_factory, struct_pb2
from google.protobuf.descriptor import FieldDescriptor as Field
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

# Codes no request may ever cause: a bug (UNKNOWN, INTERNAL), a dead server (UNAVAILABLE), an
# answer over the message limit (RESOURCE_EXHAUSTED), a method served by nobody (UNIMPLEMENTED).
FORBIDDEN = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.DATA_LOSS,
    }
)
UNARY_TIMEOUT = 30.0
# Streams follow forever: each is called, read until this deadline, and let go.
STREAM_TIMEOUT = 0.2
MAX_DEPTH = 5
POOL_SIZE = 300
# gRPC refuses larger messages before any handler runs (RESOURCE_EXHAUSTED).
MAX_MESSAGE_BYTES = 4 * 1024 * 1024

INT_RANGES = {
    Field.TYPE_INT32: (-(2**31), 2**31 - 1),
    Field.TYPE_SINT32: (-(2**31), 2**31 - 1),
    Field.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    Field.TYPE_INT64: (-(2**63), 2**63 - 1),
    Field.TYPE_SINT64: (-(2**63), 2**63 - 1),
    Field.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    Field.TYPE_UINT32: (0, 2**32 - 1),
    Field.TYPE_FIXED32: (0, 2**32 - 1),
    Field.TYPE_UINT64: (0, 2**64 - 1),
    Field.TYPE_FIXED64: (0, 2**64 - 1),
}
# Inputs that broke, or could break, something that takes names as paths, options or refs.
NASTY_STRINGS = [
    "",
    " ",
    "\x00",
    "-",
    "--upload-pack=touch pwned://x",
    "-oProxyCommand=touch x",
    "../../../../../../var/x",
    "/var/y",
    "/srv/app/",
    "file:///srv/app",
    "ext::sh -c touch% pwned",
    "HEAD",
    "main",
    "refs/heads/main",
    "cw-task/x",
    "cw/x",
    "a..b",
    "\u202etxt.exe",
    "ü" * 3,
    "'; DROP TABLE tasks; --",
    "null",
    "TASK_STATUS_PENDING",
    "name",
    "create_time",
    "status",
    "9999-12-31T23:59:59Z",
]
# Just over, and far over, the usual limits (names, ids, refs, texts, documents).
HUGE_STRINGS = ["n" * 201, "i" * 129, "r" * 1025, "t" * (64 * 1024 + 1), "é" * (512 * 1024 + 1), "d" * (1 << 20)]


def rarely(unusual: st.SearchStrategy[Any], usual: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`unusual` about one draw in ten: most requests should get past the first check."""
    return st.integers(0, 9).flatmap(lambda n: unusual if n == 0 else usual)


TIMESTAMP_SECONDS = rarely(
    st.sampled_from([-(2**63), -62_135_596_801, 253_402_300_800, 2**63 - 1]),
    st.integers(-62_135_596_800, 253_402_300_799),
)
NANOS = rarely(st.sampled_from([-1, 1_000_000_000, -(2**31), 2**31 - 1]), st.integers(0, 999_999_999))
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    rarely(st.sampled_from([math.nan, math.inf, -math.inf]), st.floats(allow_nan=False, allow_infinity=False)),
    st.integers(-(2**53), 2**53),
    st.text(max_size=10),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)

JSON_TYPES = ("google.protobuf.Struct", "google.protobuf.ListValue", "google.protobuf.Value")


@dataclass
class IdPool:
    """Ids of rows that exist (or existed): requests name them as often as made-up ones."""

    ids: list[str] = field(default_factory=list)

    def harvest(self, message: Message) -> None:
        for described, value in message.ListFields():
            if described.type == Field.TYPE_MESSAGE:
                for item in value if described.is_repeated and not _is_map(described) else [value]:
                    if isinstance(item, Message):
                        self.harvest(item)
            elif described.type == Field.TYPE_STRING and _is_id(described.name) and not described.is_repeated:
                self._add(value)
        del self.ids[:-POOL_SIZE]

    def _add(self, row_id: str) -> None:
        if row_id and row_id not in self.ids:
            self.ids.append(row_id)

    def pick(self, index: int) -> str:
        """One of the ids; an index rather than a choice among them, so that the shape of what
        hypothesis draws never depends on how many ids there are yet."""
        return self.ids[index % len(self.ids)] if self.ids else ""


@dataclass
class Caller:
    """Calls any method by its descriptor; `metadata` rides on every call (an auth header)."""

    channel: grpc.Channel
    metadata: Sequence[tuple[str, str]] = ()

    def call(self, method: Any, request: Message | bytes) -> tuple[grpc.StatusCode, list[Message]]:
        path = f"/{method.containing_service.full_name}/{method.name}"
        decode = message_factory.GetMessageClass(method.output_type).FromString
        encode = None if isinstance(request, bytes) else _serialize
        try:
            if method.server_streaming:
                stream = self.channel.unary_stream(path, request_serializer=encode, response_deserializer=decode)
                return grpc.StatusCode.OK, list(stream(request, timeout=STREAM_TIMEOUT, metadata=self.metadata))
            unary = self.channel.unary_unary(path, request_serializer=encode, response_deserializer=decode)
            return grpc.StatusCode.OK, [unary(request, timeout=UNARY_TIMEOUT, metadata=self.metadata)]
        except grpc.RpcError as error:
            return error.code(), []


def _size(request: Message | bytes) -> int:
    return len(request) if isinstance(request, bytes) else request.ByteSize()


def _shown(request: Message | bytes) -> str:
    text = repr(request) if isinstance(request, bytes) else str(request)
    return text if len(text) < 2000 else f"{text[:2000]}..."


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _is_map(described: Any) -> bool:
    return described.message_type is not None and bool(described.message_type.GetOptions().map_entry)


def _is_id(name: str) -> bool:
    return name == "id" or name.endswith("_id")


def methods_of(services: Sequence[Any]) -> list[Any]:
    """Every method a client can call with one request (client streams have none here)."""
    return [method for service in services for method in service.methods if not method.client_streaming]


def _strings(name: str, pool: IdPool) -> st.SearchStrategy[str]:
    made_up = rarely(st.sampled_from(HUGE_STRINGS), st.one_of(st.text(max_size=30), st.sampled_from(NASTY_STRINGS)))
    if _is_id(name.removesuffix("s")):
        return st.one_of(st.integers(0, POOL_SIZE - 1).map(pool.pick), made_up)
    if name.endswith("_token"):
        return rarely(made_up, st.just(""))
    return made_up


def _scalar(described: Any, pool: IdPool) -> st.SearchStrategy[Any]:
    kind = described.type
    if kind == Field.TYPE_STRING:
        return _strings(described.name, pool)
    if kind == Field.TYPE_BYTES:
        return st.binary(max_size=32)
    if kind == Field.TYPE_BOOL:
        return st.booleans()
    if kind in (Field.TYPE_DOUBLE, Field.TYPE_FLOAT):
        finite = st.floats(allow_nan=False, allow_infinity=False, width=64 if kind == Field.TYPE_DOUBLE else 32)
        return rarely(st.sampled_from([math.nan, math.inf, -math.inf]), finite)
    if kind == Field.TYPE_ENUM:
        defined = sorted(described.enum_type.values_by_number)
        return rarely(st.integers(-(2**31), 2**31 - 1), st.sampled_from(defined))
    low, high = INT_RANGES[kind]
    return rarely(
        st.one_of(st.integers(low, high), st.sampled_from([-1 if low < 0 else 2, low, high])), st.integers(0, 100)
    )


@dataclass
class RequestDrawer:
    """Fills a message field by field with what hypothesis draws; `field_names` (every field name of
    the package) feed FieldMask paths."""

    pool: IdPool
    field_names: list[str]

    def fill(self, message: Any, draw: Callable[..., Any], depth: int = MAX_DEPTH) -> None:
        if self._well_known(message, draw) or depth <= 0:
            return
        for described in message.DESCRIPTOR.fields:
            if draw(st.integers(0, 3)) < 3:  # most fields set: a request with none is refused at once
                self._fill_field(message, described, draw, depth)

    def _fill_field(self, message: Any, described: Any, draw: Callable[..., Any], depth: int) -> None:
        target = getattr(message, described.name)
        if _is_map(described):
            key_field, value_field = (described.message_type.fields_by_name[n] for n in ("key", "value"))
            for _ in range(draw(st.integers(0, 2))):
                key = draw(_scalar(key_field, self.pool))
                if value_field.type == Field.TYPE_MESSAGE:
                    self.fill(target[key], draw, depth - 1)
                else:
                    target[key] = draw(_scalar(value_field, self.pool))
        elif described.is_repeated:
            count = draw(rarely(st.just(1001), st.integers(0, 3)))
            if described.type == Field.TYPE_MESSAGE:
                for _ in range(min(count, 3)):
                    self.fill(target.add(), draw, depth - 1)
            else:
                item = draw(_scalar(described, self.pool))
                target.extend([item[:8] if count > 3 and isinstance(item, str) else item] * count)
        elif described.type == Field.TYPE_MESSAGE:
            target.SetInParent()
            self.fill(target, draw, depth - 1)
        else:
            setattr(message, described.name, draw(_scalar(described, self.pool)))

    def _names(self) -> st.SearchStrategy[str]:
        return st.one_of(st.sampled_from(self.field_names), st.text(max_size=12))

    def _well_known(self, message: Any, draw: Callable[..., Any]) -> bool:
        """Fills the Google well-known types the ways their own rules can be broken."""
        name = message.DESCRIPTOR.full_name
        if name in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
            message.seconds, message.nanos = draw(TIMESTAMP_SECONDS), draw(NANOS)
        elif name in JSON_TYPES:
            # Keys often name real fields: a Struct may stand for a message (a change set's `after`).
            shapes = {
                "Struct": st.dictionaries(self._names(), JSON_VALUES, max_size=4),
                "ListValue": st.lists(JSON_VALUES, max_size=4),
                "Value": JSON_VALUES,
            }
            holder = struct_pb2.Struct()
            holder.update({"value": draw(shapes[message.DESCRIPTOR.name])})
            value = holder.fields["value"]
            message.CopyFrom({"Struct": value.struct_value, "ListValue": value.list_value}.get(name[16:], value))
        elif name == "google.protobuf.FieldMask":
            message.paths.extend(draw(st.lists(self._names(), max_size=3)))
        else:
            return name.startswith("google.protobuf.")  # Empty, and any other: left as they are
        return True


def field_names(services: Sequence[Any]) -> list[str]:
    names = {
        described.name
        for service in services
        for message in service.file.message_types_by_name.values()
        for described in message.fields
    }
    return sorted(names)


def fuzz_services(
    services: Sequence[Any],
    caller: Caller,
    pool: IdPool,
    examples: int,
    on_call: Callable[[Any, grpc.StatusCode], None] = lambda _method, _code: None,
) -> Counter[str]:
    """Calls each of the services' methods with drawn requests, `examples` calls in all shared
    evenly; returns calls by status code name. Fails (AssertionError, with the request hypothesis
    shrank it to) on a FORBIDDEN code, or a DEADLINE_EXCEEDED from a unary method; `on_call` sees
    every call."""
    methods = methods_of(services)
    fuzzer = _Fuzzer(RequestDrawer(pool, field_names(services)), caller, on_call)
    for method in methods:
        fuzzer.fuzz(method, max(1, examples // len(methods)))
    return fuzzer.codes


@dataclass
class _Fuzzer:
    drawer: RequestDrawer
    caller: Caller
    on_call: Callable[[Any, grpc.StatusCode], None]
    codes: Counter[str] = field(default_factory=Counter)

    def fuzz(self, method: Any, examples: int) -> None:
        """One hypothesis run per method: a failure shrinks to a request of that method."""

        @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(st.data())
        def one_call(data: st.DataObject) -> None:
            request: Message | bytes
            if data.draw(rarely(st.just(True), st.just(False)), label="raw bytes"):
                request = data.draw(st.binary(max_size=64), label="bytes")
            else:
                request = message_factory.GetMessageClass(method.input_type)()
                self.drawer.fill(request, data.draw)
            note(f"request: {_shown(request)}")
            self.check(method, request)

        one_call()

    def check(self, method: Any, request: Message | bytes) -> None:
        code, answers = self.caller.call(method, request)
        self.codes[code.name] += 1
        self.on_call(method, code)
        for answer in answers:
            self.drawer.pool.harvest(answer)
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED and _size(request) > MAX_MESSAGE_BYTES:
            return  # gRPC's own refusal of a request over its message limit
        assert code not in FORBIDDEN, f"{method.full_name} answered {code.name}"
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            assert method.server_streaming, f"{method.full_name} answered DEADLINE_EXCEEDED"
