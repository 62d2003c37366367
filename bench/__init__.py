"""Performance benchmarks: each script prints its figures (`python bench/x.py`); `python -m bench.device` runs
every GPU figure of them in one go within a time budget."""
