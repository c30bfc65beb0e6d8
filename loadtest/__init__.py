"""The release gate at the top of loadtest/, the side-by-side benchmark under loadtest/bench/.

The gate is what `python -m loadtest`, `make loadtest` and `pipelines.loadcheck` run: locustfile.py (the
personas), checks.py (payloads and answer checks), slo.py with profiles.toml (profiles and verdict),
run.py (one run as a typed result), timeline.py and plot.py (latency over time). Next to it, for the gate,
the bench and the tests alike: stats.py (the one percentile) and launch.py (start a server, wait until
it is ready). Everything else, including the peers' venvs, is the bench's; the gate never imports
loadtest.bench (tests/test_layers.py).
"""
