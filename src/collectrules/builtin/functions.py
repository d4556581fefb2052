"""Registers the built-in expression functions (see :mod:`collectrules.lang.functions`)."""

from __future__ import annotations

from collections.abc import Callable

from ..lang.functions import BUILTIN_FUNCTIONS, Function
from . import hookimpl


@hookimpl
def collectrules_register_functions(register: Callable[[Function], None]) -> None:
    for function in BUILTIN_FUNCTIONS:
        register(function)
