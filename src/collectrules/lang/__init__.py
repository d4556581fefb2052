"""The expression language: grammar, parser, AST, type checker and built-in functions."""
