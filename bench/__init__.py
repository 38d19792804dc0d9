"""Benchmarks: the product against its floor and against alternatives, in one run.

`make bench` (or `python -m bench.run [--quick]`) writes docs/BENCHMARKS.md. Nothing here is
a test: `make test` never collects it (pytest's testpaths is tests/).
"""
