"""Tools for a laptop and for tests, never shipped in the serving image: the embedded PostgreSQL and `up`.

They live under pipelines/ (which orchestrates running the service locally, and whose local target
uses the embedded PostgreSQL too) rather than in service/, so the image's `COPY service/` carries
only serving code. The top-level layout is fixed, hence no `devtools/` beside it.
"""
