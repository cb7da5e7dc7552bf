"""The `cw` command group: global options, lazily made clients, output as text or JSON, and
one clear line (no stack trace) when a call fails.

What a command does not use it does not import (tests/e2e/test_cli_imports.py): the clients are
made on their first call, rich when something is printed for people, protobuf's JSON mapping for --json.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import click
import grpc
from google.protobuf.message import Message

from clients.sdk.errors import CwError, from_rpc_error
from clients.sdk.lazy import import_module

if TYPE_CHECKING:
    from rich.console import Console

    from clients.cli.verbs import Verb
    from clients.sdk import OrchestratorClient, StoreClient


@cache
def console() -> Console:
    """Where output for people goes. Piped output is not cut to 80 columns: ids must survive a
    copy and paste."""
    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else 250)


@cache
def errors() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


@dataclass
class Session:
    store_address: str | None
    orchestrator_address: str | None
    as_json: bool
    _store: StoreClient | None = field(default=None, repr=False)
    _orchestrator: OrchestratorClient | None = field(default=None, repr=False)

    @property
    def store(self) -> StoreClient:
        if self._store is None:
            from clients.sdk.store import StoreClient

            self._store = StoreClient(self.store_address)
            self._store.ensure_reachable()
        return self._store

    @property
    def orchestrator(self) -> OrchestratorClient:
        if self._orchestrator is None:
            from clients.sdk.orchestrator import OrchestratorClient

            self._orchestrator = OrchestratorClient(self.orchestrator_address)
            self._orchestrator.ensure_reachable()
        return self._orchestrator

    def show(self, value: Message | Sequence[Any] | dict[str, Any], render: Callable[[], None]) -> None:
        """JSON (lowerCamelCase, as protobuf maps it) with --json; otherwise the human rendering."""
        if not self.as_json:
            render()
            return
        click.echo(json.dumps(as_plain(value), indent=2, sort_keys=True))


def as_plain(value: Any) -> Any:
    if isinstance(value, Message):
        return message_dict(value)
    if isinstance(value, dict):
        return {key: as_plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [as_plain(item) for item in value]
    return value


def message_dict(message: Message) -> dict[str, Any]:
    """The message as protobuf's JSON mapping gives it, whole numbers as integers: a Struct (an
    event's details) holds every number as a double, so a pid came out as `18956.0`."""
    from google.protobuf import json_format

    plain: dict[str, Any] = whole_numbers(json_format.MessageToDict(message))
    return plain


# Doubles above this are not all exact integers: they stay as they are.
EXACT_INTEGERS = 2**53


def whole_numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) <= EXACT_INTEGERS:
        return int(value)
    if isinstance(value, dict):
        return {key: whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [whole_numbers(item) for item in value]
    return value


JSON_HELP = "machine-readable output (also accepted before the verb: cw --json ...)"


def _as_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    session = ctx.find_object(Session)
    if value and session is not None:
        session.as_json = True


class CwCommand(click.Command):
    """Every verb takes `--json` (as the group does before the verb: one flag, two places), and a
    failed call becomes `error: <command and its arguments>: <why>` on stderr, exit 1."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        as_json = click.Option(["--json"], is_flag=True, expose_value=False, callback=_as_json, help=JSON_HELP)
        self.params.append(as_json)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CwError as error:
            _fail(ctx, error)
        except grpc.RpcError as error:
            _fail(ctx, from_rpc_error(error))
        except KeyboardInterrupt:
            sys.exit(130)


def _fail(ctx: click.Context, error: CwError) -> None:
    arguments = [str(ctx.params[p.name]) for p in ctx.command.params if isinstance(p, click.Argument) and p.name]
    what = " ".join([ctx.command_path, *arguments])
    errors().print(f"error: {what}: {error.message} ({error.code.name.lower()})", markup=False, soft_wrap=True)
    sys.exit(1)


class CwGroup(click.Group):
    """A group whose `lazy` commands (clients/cli/verbs.py) are imported when first resolved: when
    invoked, or when their own help is asked for. The group's help lists them from their table
    entry, as click would list them loaded."""

    command_class = CwCommand
    group_class = type

    def __init__(self, *args: Any, lazy: Mapping[str, Verb] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, Verb] = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self.add_command(load_verb(self.lazy[cmd_name]), cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing (click.Group.format_commands), with a command not imported yet stood in
        for by one carrying its short help: shortened for the width as the command's own would be."""
        listed = [(name, self._listed(name)) for name in self.list_commands(ctx)]
        shown = [(name, command) for name, command in listed if command is not None and not command.hidden]
        if not shown:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in shown)
        with formatter.section("Commands"):
            formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in shown])

    def _listed(self, name: str) -> click.Command | None:
        if name in self.commands:
            return self.commands[name]
        return click.Command(name, help=self.lazy[name].short_help)


def load_verb(verb: Verb) -> click.Command:
    """The command `verb.target` names."""
    module, _, attribute = verb.target.partition(":")
    command: click.Command = getattr(import_module(module), attribute)
    return command


pass_session = click.make_pass_decorator(Session)
