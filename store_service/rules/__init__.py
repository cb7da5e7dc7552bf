"""The rules a write to the store must pass, one module per kind of rule. The write path
(store_service/writes/) applies them in one order for every RPC that writes; the repositories apply
the row-level ones (consistency, providers, progress) for every other writer too (change sets and
their reverts, proposals accepted).

- permissions: what a client may set, and the status transitions only the orchestrator makes;
- preconditions: `expected_update_time` and `expected_statuses` of an Update, against the stored row;
- in_use: a person's edit of what a live agent works on waits until the agent is done;
- idempotency: a Create retried with its `request_id` answers what the first one made;
- consistency: rows that point at each other agree (trees, initiatives, a COMPLETED phase);
- providers: provider names, fallback lists and an account's cap;
- progress: the status invariants of phases, initiatives, tasks and agents, checked at commit.
"""
