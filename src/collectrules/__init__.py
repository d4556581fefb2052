"""collectrules: executable debt-collection policy.

The public API is what ``__all__`` lists; everything else is internal and may change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "CollectRulesError",
    "Decision",
    "Program",
    "__version__",
    "check_policy_file",
    "compile_policy",
    "hookimpl",
    "load_policy",
]

from .errors import CollectRulesError
from .hookspecs import hookimpl

if TYPE_CHECKING:
    from .engine.decision import Decision
    from .engine.program import Program, compile_policy
    from .policy.check import check_policy_file, load_policy


def __getattr__(name: str) -> Any:
    # lazy: importing the package (and the CLI) stays cheap
    if name in ("load_policy", "check_policy_file"):
        from .policy import check

        return getattr(check, name)
    if name in ("compile_policy", "Program"):
        from .engine import program

        return getattr(program, name)
    if name == "Decision":
        from .engine.decision import Decision

        return Decision
    raise AttributeError(f"module 'collectrules' has no attribute {name!r}")
