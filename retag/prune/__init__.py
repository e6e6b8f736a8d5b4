"""Pruning: the pure plan, the report and the job that executes it."""
