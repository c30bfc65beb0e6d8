"""Tools for a laptop and for tests, never shipped in the serving image, all in this one folder.

- `embedded_pg`: a real PostgreSQL without Docker (the tests, the local pipeline target, `make up`, the bench);
- `__main__`: `make up` (train if needed, Postgres, the service on :8000) and `make down` (stop both);
- `monitor`: `make monitor`, a real Prometheus with the stacks' alert rules scraping `make up`'s service;
- `settings_docs`: `make docs`, the settings tables of the docs generated from the code.

They live under pipelines/ (which orchestrates running the service locally) rather than in service/, so the
image's `COPY service/` carries only serving code. The top-level layout is fixed, hence no `devtools/` beside
it. tests/test_layers.py gives this folder a layer of its own, below loadtest (the bench starts Postgres).
"""
