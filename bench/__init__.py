"""Benchmark harnesses (not shipped in the wheel). ``python -m bench.speed`` measures speed."""
