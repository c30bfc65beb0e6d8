"""Orchestration of the model's path to production: train, gate, deploy, smoke, loadcheck, promote, roll back.

Each stage is a module with one importable function returning a typed result; `python -m pipelines`
is a thin CLI over them. Stages that touch a stack go through the narrow `pipelines.targets.Target`
protocol, implemented for real by `LocalTarget` (background uvicorn + embedded Postgres) and
`PulumiTarget` (the Automation API).
"""
