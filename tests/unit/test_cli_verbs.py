"""The tables that let `cw` import only what a verb uses (issue 28) agree with what they stand for:
the verbs (clients/cli/verbs.py) with the commands their modules define, and the SDK's unary
methods (clients/sdk/methods.py) with the generated code."""

from __future__ import annotations

import inspect

import click
import pytest

from clients.cli.app import CwGroup, load_verb
from clients.cli.verbs import VERBS, Verb
from clients.sdk import methods

ENTRIES = [(name, verb) for name, verb in VERBS.items()] + [
    (f"{group} {name}", verb) for group, parent in VERBS.items() for name, verb in parent.more.items()
]


def first_sentence(command: click.Command) -> str:
    """What click shows for the command in its group's listing, given all the room it needs."""
    if command.short_help:
        return inspect.cleandoc(command.short_help)
    return click.Command("whole", help=command.help).get_short_help_str(limit=10_000)


@pytest.mark.parametrize(("name", "verb"), ENTRIES, ids=[name for name, _ in ENTRIES])
def test_each_verb_is_the_command_its_module_defines_with_its_help(name: str, verb: Verb) -> None:
    command = load_verb(verb)
    assert command.name == name.rsplit(maxsplit=1)[-1], f"{verb.target} is the command {command.name!r}"
    assert verb.short_help == first_sentence(command), (
        f"clients/cli/verbs.py, {name!r}: the short help should read {first_sentence(command)!r}"
    )
    if verb.more:
        assert isinstance(command, CwGroup)
        for added, entry in verb.more.items():
            # Resolved already (by another test) or not at all: never one of the group's own.
            assert command.commands.get(added, load_verb(entry)) is load_verb(entry), f"{name} {added} twice"


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


def test_a_group_lists_the_commands_other_modules_add_to_it() -> None:
    task = load_verb(VERBS["task"])
    assert isinstance(task, click.Group)
    context = click.Context(task)
    assert {"list", "show", "edit", "move", "delete"} <= set(task.list_commands(context))
    edit = task.get_command(context, "edit")
    assert edit is not None and edit.callback is not None and edit.callback.__module__ == "clients.cli.edits"


def test_the_sdk_methods_table_is_what_the_generated_code_gives() -> None:
    """Fails after a proto change until `python -m clients.sdk.methods` (or `make proto`) is run."""
    assert methods.from_generated_code() == methods.UNARY_METHODS, "run: python -m clients.sdk.methods"
