"""OpenAgg benchmarks. Each module runs alone (``python -m bench.<name>``) and prints
figures with a ratio to a baseline measured in the same run; none fails on a number.
``python -m bench.run_all`` (``make bench``) runs them all at the issue's sizes."""
