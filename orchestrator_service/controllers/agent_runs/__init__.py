"""What the tasks and agents controllers do to one agent's run, apart from deciding: start it
(`launches.py`: its provider `provider_choice.py`, its directories `workdirs.py`, what it is told
`run_inputs.py`), ship and meter its output while it runs (`output.py`, `usage.py`), stop it
(`stops.py`) and keep what it left (`checkpointing.py`). The controllers themselves are the
modules beside this package; what each kind of run is started with and how it is settled is in
`orchestrator_service/runs/`."""
