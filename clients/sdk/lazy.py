"""Modules imported the first time one of their names is used.

A `cw` command makes one call, or a few: importing the generated messages and stubs of every
service (or rich, to print JSON) cost it more than its calls did (bench/cli_startup.py measures it). Modules that need a
heavy module only in some of their functions name it with `lazy_modules` at run time and import it
as usual for the type checker:

    if TYPE_CHECKING:
        from cw.store.v1 import task_pb2
    else:
        (task_pb2,) = lazy_modules("cw.store.v1", "task_pb2")

`task_pb2.Task` then imports `cw.store.v1.task_pb2` on its first use, and is a plain attribute after.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any


class LazyModule(ModuleType):
    """Stands for the module named `name` until one of its attributes is asked for: then imports
    it and takes its attributes, so later uses cost what a module's attribute costs."""

    def __getattr__(self, attribute: str) -> Any:
        module = import_module(self.__name__)
        self.__dict__.update(module.__dict__)
        return getattr(module, attribute)


def import_module(name: str) -> ModuleType:
    """importlib.import_module, but seen by `python -X importtime` (which reports only what the
    import statement and `__import__` import): so a profile shows what a lazy import costs."""
    __import__(name)
    return sys.modules[name]


def lazy_modules(package: str, *names: str) -> tuple[LazyModule, ...]:
    """`package.name` for each name, each imported on its first use."""
    return tuple(LazyModule(f"{package}.{name}") for name in names)
