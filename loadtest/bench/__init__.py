"""`make bench`: the modelship service side by side with baselines and peers, under the same closed-loop load.

- the bench: `__main__.py`, harness.py (runs the matrix), cases.py and peer_cases.py (which server gets
  which workload), servers.py, loadgen.py and wrk.py (the load), report.py and tables.py;
- baseline servers: seed_flask.py, iris_flask.py, naive_fastapi.py, plain_fastapi.py, raw_asgi.py,
  baseline_model.py;
- peers in venvs of their own: peers.py (builds them), kserve_peer.py (KServe's server on our model);
- probes run by hand, whose figures the benchmark notes cite: asgi_cpu.py, batch_p99.py, batch_profile.py,
  logwrite.py.
"""
