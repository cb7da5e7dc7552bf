"""The `cw` verbs, one module each: `cw NAME ...` (every command under it) is defined in
`commands/NAME.py` (`cw web` is clients/web/command.py's). clients/cli/verbs.py lists them, and
`cw` imports one only when its verb is invoked; what several verbs share is in clients/cli/ (views,
diff_views, planning_views, planning_runs)."""
