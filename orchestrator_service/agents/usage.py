"""What an agent used, read from its output as its CLI reports it (README, "Usage and budgets"): tokens and cost.

Claude Code's stream-json says it twice: every `assistant` line carries its message's `usage`
(the same message id may come on several lines, one per content block: the last one counts), and
the `result` line that ends an invocation carries the invocation's summed `usage` and
`total_cost_usd`. A run's usage is its `result` when it printed one, else the sum of its messages
(a run stopped mid-way, by a budget or a crash, prints no result). An agent's usage is the sum of
its runs: the output file holds them one after the other, and each run starts where the shim
recorded it (`output_offset` in its identity file), or after a `result` line.

Codex (`codex exec --json`) prints `thread.started {thread_id}` and, after each turn,
`turn.completed {usage}` holding the thread's usage so far (a resumed thread's first turn reports
the earlier runs' tokens too: tests/integration/test_codex_usage.py), so the last one of each thread
counts: `input_tokens` (which, as OpenAI counts, include the cached ones), `cached_input_tokens` as
cache reads, `cache_write_input_tokens` as cache writes, `output_tokens` (reasoning included).

Gemini CLI (`-o stream-json`, clis/gemini.py) reports usage once per run, in the `stats` of the
`result` line that ends it (a resumed session's run counts only its own requests), summed over the
run's API responses: `input_tokens` (the prompts' `promptTokenCount`, cached tokens included, as
Codex counts them), `cached` as cache reads (`cachedContentTokenCount`), and as output the answers'
`candidatesTokenCount` plus the thinking the API bills as output (`thoughtsTokenCount`), which the
CLI counts only in `total_tokens`: output is `total_tokens - input_tokens` when that is more than
its `output_tokens`. The API has no cache writes. The CLI states no cost: it comes from the price
table, per model of `stats.models`. A run stopped before its result (a budget, a crash) shows no
usage: the CLI prints none before.

OpenCode (`opencode run --format json`) prints a `step_finish` after each model request, holding
that step's `tokens` (`input`, `output`, `reasoning`, `cache.read`, `cache.write`) and `cost` (USD,
from its own price list): a run's usage is the sum of its steps, reasoning counted as output.

Every number is the agent's own output, so hostile input: counts that are not whole numbers in
[0, MAX_TOKENS] and costs that are not finite numbers in [0, MAX_COST_USD] count as absent, lines
longer than MAX_LINE_BYTES are skipped, and nothing here raises on any byte.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cw.store.v1 import agent_pb2

MAX_TOKENS = 10**15
MAX_COST_USD = 10.0**9
MAX_LINE_BYTES = 8 * 1024 * 1024
READ_BYTES = 1024 * 1024
# What is remembered per run (messages by id) and per agent (Codex threads), at most: past that, a
# new message's usage is added as it comes and a new thread's is not counted (memory stays bounded
# whatever an agent prints).
MAX_MESSAGES = 100_000
MAX_THREADS = 1_000
# Only lines holding one of these are parsed (the rest of the output costs a substring search).
_MARKERS = (b'"usage"', b'"total_cost_usd"', b'"thread_id"', b'"stats"', b'"step_finish"')
# Codex's names for them.
_CODEX_FIELDS = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cached_input_tokens": "cache_read_tokens",
    "cache_write_input_tokens": "cache_write_tokens",
}
# Claude Code's names for the four counts.
_CLAUDE_FIELDS = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cache_read_input_tokens": "cache_read_tokens",
    "cache_creation_input_tokens": "cache_write_tokens",
}


# OpenCode's names (its `cache` object flattened into `read` and `write`).
_OPENCODE_FIELDS = {
    "input": "input_tokens",
    "output": "output_tokens",
    "read": "cache_read_tokens",
    "write": "cache_write_tokens",
}


@dataclass(frozen=True)
class Counts:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0

    def plus(self, other: Counts) -> Counts:
        return Counts(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.cost_usd + other.cost_usd,
        )

    def message(self) -> agent_pb2.Usage:
        return agent_pb2.Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read_tokens=self.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens,
            cost_usd=self.cost_usd,
        )

    @classmethod
    def of(cls, usage: agent_pb2.Usage) -> Counts:
        return cls(
            usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens, usage.cost_usd
        )


def budget_tokens(usage: agent_pb2.Usage | Counts) -> int:
    """Tokens as budgets count them: input + output + cache writes (cache reads are cheap)."""
    return usage.input_tokens + usage.output_tokens + usage.cache_write_tokens


@dataclass(frozen=True)
class Price:
    """USD per million tokens of one model."""

    input: float = 0.0
    output: float = 0.0
    cache_read: float = 0.0
    cache_write: float = 0.0

    def cost(self, counts: Counts) -> float:
        per_token = (
            counts.input_tokens * self.input
            + counts.output_tokens * self.output
            + counts.cache_read_tokens * self.cache_read
            + counts.cache_write_tokens * self.cache_write
        )
        return per_token / 1_000_000


Prices = Mapping[str, Price]


def parse_prices(text: str) -> dict[str, Price]:
    """The price table (`--prices FILE`): `{"MODEL": {"input": USD, "output": USD, "cache_read":
    USD, "cache_write": USD}}`, USD per million tokens. Raises ValueError naming what is wrong."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("a price table is a JSON object of models")
    prices = {}
    for model, entry in data.items():
        if not isinstance(entry, dict) or set(entry) - {"input", "output", "cache_read", "cache_write"}:
            raise ValueError(f"{model}: give input, output, cache_read and cache_write (USD per million tokens)")
        values = {name: _cost(value) for name, value in entry.items()}
        wrong = [name for name, value in values.items() if value is None]
        if wrong:
            raise ValueError(f"{model}.{wrong[0]}: not a price")
        prices[str(model)] = Price(**{name: float(value or 0.0) for name, value in values.items()})
    return prices


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
        return None
    return value


def _cost(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and 0.0 <= number <= MAX_COST_USD else None


def gemini_counts(stats: Any) -> Counts | None:
    """Gemini CLI's `stats` (of a run, or of one model in its `models`) as Counts; None when it is
    no such object. Output includes thinking (see the module's docstring)."""
    if not isinstance(stats, dict):
        return None
    input_tokens = _count(stats.get("input_tokens")) or 0
    output_tokens = _count(stats.get("output_tokens")) or 0
    total = _count(stats.get("total_tokens"))
    if total is not None and total - input_tokens > output_tokens:
        output_tokens = total - input_tokens
    return Counts(input_tokens, output_tokens, _count(stats.get("cached")) or 0, 0)


def gemini_cost(stats: Any, prices: Prices) -> float | None:
    """A Gemini run's cost from the price table, model by model; None when no model is priced."""
    models = stats.get("models") if isinstance(stats, dict) else None
    if not isinstance(models, dict):
        return None
    priced = [(prices[model], gemini_counts(entry)) for model, entry in models.items() if model in prices]
    if not priced:
        return None
    return sum((price.cost(counts) for price, counts in priced if counts is not None), 0.0)


def counts_of(usage: Any, names: Mapping[str, str] = _CLAUDE_FIELDS) -> Counts | None:
    """A CLI's `usage` object (Claude Code's names unless told) as Counts; None when it is no such
    object."""
    if not isinstance(usage, dict):
        return None
    values = {ours: _count(usage.get(theirs)) or 0 for theirs, ours in names.items()}
    return Counts(**values)


def opencode_step_counts(event: Mapping[str, Any]) -> Counts | None:
    """An OpenCode `step_finish` event's tokens and cost (reasoning counted as output, as the API
    bills it); None for any other event, or one without tokens."""
    part = event.get("part")
    if event.get("type") != "step_finish" or not isinstance(part, dict) or not isinstance(part.get("tokens"), dict):
        return None
    tokens = part["tokens"]
    cache = tokens.get("cache") if isinstance(tokens.get("cache"), dict) else {}
    flat = {**tokens, "read": cache.get("read"), "write": cache.get("write")}
    counts = counts_of(flat, _OPENCODE_FIELDS) or Counts()
    reasoning = _count(tokens.get("reasoning")) or 0
    return replace(counts, output_tokens=counts.output_tokens + reasoning, cost_usd=_cost(part.get("cost")) or 0.0)


@dataclass
class _Run:
    """One invocation of the CLI so far: its messages by id (with their model), its result."""

    messages: dict[str, tuple[str, Counts]] = field(default_factory=dict)
    # Messages past MAX_MESSAGES, summed as they came.
    overflow: Counts = Counts()
    result: Counts | None = None
    result_cost: float | None = None
    # The costs the CLI reported per step (OpenCode), summed.
    step_cost: float | None = None

    def total(self, prices: Prices) -> Counts:
        priced = sum((prices[model].cost(counts) for model, counts in self.messages.values() if model in prices), 0.0)
        if self.result is not None:
            tokens = self.result
            models = {model for model, _ in self.messages.values()}
            if len(models) == 1 and next(iter(models)) in prices:
                priced = prices[next(iter(models))].cost(tokens)
        else:
            tokens = self.overflow
            for _, counts in self.messages.values():
                tokens = tokens.plus(counts)
        reported = self.result_cost if self.result_cost is not None else self.step_cost
        cost = reported if reported is not None else priced
        return replace(tokens, cost_usd=cost)

    def empty(self) -> bool:
        return (
            not self.messages
            and self.result is None
            and self.result_cost is None
            and self.step_cost is None
            and self.overflow == Counts()
        )

    def add(self, key: str, model: str, counts: Counts) -> None:
        if key in self.messages or len(self.messages) < MAX_MESSAGES:
            self.messages[key] = (model, counts)
        else:
            self.overflow = self.overflow.plus(counts)


@dataclass
class UsageReader:
    """Reads one agent's output file from its start, a piece at a time, into its usage."""

    offset: int = 0
    closed: Counts = Counts()
    run: _Run = field(default_factory=_Run)
    pending: bytearray = field(default_factory=bytearray)
    skipping: bool = False
    # Where the last line read began: a run start after it and up to the next line ends a run.
    last_line: int = -1
    # Codex: the thread being read, and the last usage each thread reported (its total).
    codex_thread: str = ""
    codex_threads: dict[str, Counts] = field(default_factory=dict)

    def read(self, output: Path, run_starts: Iterable[int], prices: Prices) -> Counts:
        """Whatever the file gained since the last call; the agent's usage so far."""
        starts = sorted(set(run_starts))
        try:
            with output.open("rb") as handle:
                handle.seek(self.offset)
                while data := handle.read(READ_BYTES):
                    self._feed(data, starts, prices)
        except OSError:
            pass  # no output yet, or none readable: what was read so far stands
        return self.total(prices)

    def total(self, prices: Prices) -> Counts:
        total = self.closed.plus(self.run.total(prices))
        for thread in self.codex_threads.values():
            total = total.plus(thread)
        return total

    def _feed(self, data: bytes, starts: list[int], prices: Prices) -> None:
        position = self.offset - len(self.pending)
        self.offset += len(data)
        self.pending += data
        while (end := self.pending.find(b"\n")) >= 0:
            line = bytes(self.pending[:end])
            del self.pending[: end + 1]
            if not self.skipping:
                self._line(position, line, starts, prices)
            self.skipping = False
            position += end + 1
        if len(self.pending) > MAX_LINE_BYTES:
            self.pending.clear()
            self.skipping = True

    def _line(self, position: int, line: bytes, starts: list[int], prices: Prices) -> None:
        if any(self.last_line < start <= position for start in starts) and not self.run.empty():
            self._close(prices)
        self.last_line = position
        if not any(marker in line for marker in _MARKERS):
            return
        try:
            event = json.loads(line)
        except ValueError:
            return
        if isinstance(event, dict):
            self._event(event, prices)

    def _event(self, event: dict[str, Any], prices: Prices) -> None:
        kind = event.get("type")
        if kind == "thread.started":
            thread = event.get("thread_id")
            self.codex_thread = thread if isinstance(thread, str) else ""
            return
        if kind == "turn.completed":
            counts = counts_of(event.get("usage"), _CODEX_FIELDS)
            if counts is not None and (
                self.codex_thread in self.codex_threads or len(self.codex_threads) < MAX_THREADS
            ):
                self.codex_threads[self.codex_thread] = counts
            return
        if kind == "assistant" and isinstance(event.get("message"), dict):
            message = event["message"]
            counts = counts_of(message.get("usage"))
            identity = message.get("id")
            if counts is not None:
                key = identity if isinstance(identity, str) else f"line-{len(self.run.messages)}"
                model = message.get("model")
                self.run.add(key, model if isinstance(model, str) else "", counts)
        elif kind == "step_finish":
            self._opencode_step(event)
        elif kind == "result" and "usage" not in event and "stats" in event:
            self.run.result = gemini_counts(event.get("stats"))
            self.run.result_cost = gemini_cost(event.get("stats"), prices)
            self._close(prices)
        elif kind == "result":
            self.run.result = counts_of(event.get("usage"))
            self.run.result_cost = _cost(event.get("total_cost_usd"))
            self._close(prices)

    def _opencode_step(self, event: dict[str, Any]) -> None:
        counts = opencode_step_counts(event)
        if counts is None:
            return
        part = event["part"]
        identity = part.get("id")
        self.run.add(identity if isinstance(identity, str) else f"line-{len(self.run.messages)}", "", counts)
        self.run.step_cost = (self.run.step_cost or 0.0) + counts.cost_usd

    def _close(self, prices: Prices) -> None:
        self.closed = self.closed.plus(self.run.total(prices))
        self.run = _Run()
