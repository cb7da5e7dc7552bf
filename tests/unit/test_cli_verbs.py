"""The tables that let `cw` import only what a verb uses (tests/e2e/test_cli_imports.py) agree with
what they stand for: the verbs (clients/cli/verbs.py) with the commands their modules define, each
verb's in the module named for it, and the SDK's unary methods (clients/sdk/methods.py) with the
generated code."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import click
import pytest

from clients.cli.app import CwGroup, load_verb
from clients.cli.verbs import VERBS, Verb
from clients.sdk import methods

ENTRIES = list(VERBS.items())
# Where commands made by a function (one per use) are defined: planning runs (`cw plan`, `cw phase
# detail`...) are made by planning_runs.shortcut.
FACTORIES = ("clients.cli.planning_runs",)


def first_sentence(command: click.Command) -> str:
    """What click shows for the command in its group's listing, given all the room it needs."""
    if command.short_help:
        return inspect.cleandoc(command.short_help)
    return click.Command("whole", help=command.help).get_short_help_str(limit=10_000)


@pytest.mark.parametrize(("name", "verb"), ENTRIES, ids=[name for name, _ in ENTRIES])
def test_each_verb_is_the_command_its_module_defines_with_its_help(name: str, verb: Verb) -> None:
    command = load_verb(verb)
    assert command.name == name, f"{verb.target} is the command {command.name!r}"
    assert verb.short_help == first_sentence(command), (
        f"clients/cli/verbs.py, {name!r}: the short help should read {first_sentence(command)!r}"
    )


def help_text(group: click.Group, width: int) -> str:
    return group.get_help(click.Context(group, info_name="cw", terminal_width=width, max_content_width=width))


@pytest.mark.parametrize("width", [60, 80, 200])
def test_help_lists_the_verbs_from_the_table_as_it_would_loaded(width: int) -> None:
    """Before and after every verb is imported, `cw --help` reads the same, to the truncation."""
    lazy = CwGroup(name="cw", lazy=VERBS, help="cw")
    before = help_text(lazy, width)
    loaded = CwGroup(name="cw", lazy=VERBS, help="cw")
    for name in VERBS:
        loaded.get_command(click.Context(loaded), name)
    assert set(loaded.commands) == set(VERBS) and not lazy.commands
    assert before == help_text(loaded, width)
    assert all(name in before for name in VERBS)


def defined_under(command: click.Command) -> Iterator[tuple[str, click.Command]]:
    """`command` and every command under it, each with its path below `cw`."""
    yield command.name or "", command
    if isinstance(command, click.Group):
        for child in command.commands.values():
            yield from ((f"{command.name} {path}", found) for path, found in defined_under(child))


@pytest.mark.parametrize("name", [name for name in VERBS if name != "web"])
def test_each_verb_and_all_under_it_are_defined_in_the_module_named_for_it(name: str) -> None:
    """`cw NAME ...` is in clients/cli/commands/NAME.py: a verb's commands are found by its name."""
    assert VERBS[name].target == f"clients.cli.commands.{name}:{name}"
    command = load_verb(VERBS[name])
    assert not isinstance(command, CwGroup) or not command.lazy, f"{name}: commands imported from elsewhere"
    for path, found in defined_under(command):
        assert found.callback is not None
        defined_in = found.callback.__module__
        assert defined_in in (f"clients.cli.commands.{name}", *FACTORIES), f"cw {path} is defined in {defined_in}"


def test_the_sdk_methods_table_is_what_the_generated_code_gives() -> None:
    """Fails after a proto change until `python -m clients.sdk.methods` (or `make proto`) is run."""
    assert methods.from_generated_code() == methods.UNARY_METHODS, "run: python -m clients.sdk.methods"
