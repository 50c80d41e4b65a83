"""speechtok benchmarks: `python -m bench [--only NAME]` runs `bench/bench_NAME.py:main()`."""
