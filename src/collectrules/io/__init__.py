"""Readers for the engine's input data: accounts, contact history, holds and promises.

Files may be CSV, JSON Lines or Parquet. Every cell is parsed into its runtime value (see ``values``), and
every cell that does not fit is reported with its file, row and column while the other rows are read on
(see ``tables``).
"""
