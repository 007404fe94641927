"""Benchmarks for the budgets of SPEC section 8: `python -m benchmarks`."""
