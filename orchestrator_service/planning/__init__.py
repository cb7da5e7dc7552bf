"""Planning with agents: discuss, plan, detail and refine runs, their proposals, and chat.

`runs.Planning` hooks into the orchestrator at two places: Launches asks it for a planning run's
prompt and whether a run continues an agent's session (a chat turn), and the agents controller
lets it settle planning runs (their proposals stored, a chat's reply recorded). `report.py` and
`prompts.py` are pure.
"""
