"""The kinds of run, one class per kind in one file each, and their table.

What happens when a review run ends? Open `review.py`: its `settle` calls, in order, the steps
every kind shares (`steps.py`) and its own (`reviewed`). Likewise `execute.py`, `merge.py`,
`revision.py`, `planning.py` (discuss, plan, detail, refine) and `answer.py` (a run resumed to
answer another agent's question; `asking.py` is a run that asks one).

Each kind has `inputs` (what a run starts with: its prompt and environment), `continuation`
(which CLI session the next run of its task continues), `settle` (the run's outcome -> the writes
and events, its pure parts plain functions tested without I/O: tests/unit/test_run_kinds.py) and
`follows` (what comes after it). `table.py` builds the table in one place; core.py gives it to
Launches (starting runs) and the agents controller (settling them). This package imports the
controllers; no controller imports it.
"""
