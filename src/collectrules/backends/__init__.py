"""Evaluation backends compiled from the same typed AST."""
