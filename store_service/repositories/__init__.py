"""Ports: one `typing.Protocol` per repository of the original system."""
