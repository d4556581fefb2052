"""Evaluation core: turns a compiled policy and account data into decisions."""
