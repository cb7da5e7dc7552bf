"""Planning with agents: discuss, plan, detail and refine runs, their proposals, and chat.

`runs.Planning` does the work of the planning kinds of run (orchestrator_service/runs/planning.py):
a planning run's prompt, whether a run continues an agent's session (a chat turn), and settling
planning runs (their proposals stored, a chat's reply recorded). `report.py` and
`prompts.py` are pure.
"""
