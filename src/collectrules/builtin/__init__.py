"""The default plugins: built-in channels, functions, scorers and metrics, on the public hooks."""

from ..hookspecs import hookimpl

__all__ = ["hookimpl"]
