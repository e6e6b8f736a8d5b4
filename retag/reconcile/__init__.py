"""Reconciliation: the pure decision, the report and the job that adds missing tags."""
