"""How people and programs use cw: the Python SDK (`clients.sdk`) and the `cw` CLI (`clients.cli`)."""
