"""`python -m clients.web`: what `make run` starts (the same as `cw web`)."""

from clients.web.command import web

web(prog_name="cw web")
