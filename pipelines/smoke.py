"""Stage `smoke`: a few real requests that prove a deployment serves the expected model correctly."""

from __future__ import annotations

import argparse
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from model.manifest import Manifest, ManifestError, example_instance
from pipelines import commands
from pipelines.settings import PipelineSettings
from pipelines.targets.base import OUTPUT_MODEL_VERSION, SMOKE
from service import sources

log = logging.getLogger(__name__)

# The seed's example requests ("seed 001"): the house-price tutorial the project started from.
SEED_EXAMPLES: list[dict[str, Any]] = [
    {"size": 2500, "bedrooms": 3, "age": 10},
    {"size": 1800, "bedrooms": 2, "age": 5},
    {"size": 3000, "bedrooms": 4, "age": 15},
]


@dataclass(frozen=True)
class SmokeCheck:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class SmokeResult:
    url: str
    expected_version: str | None
    served_version: str | None
    passed: bool
    checks: list[SmokeCheck] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"smoke {self.url}: {'PASS' if self.passed else 'FAIL'}"]
        lines += [f"  [{'ok' if c.passed else 'FAIL'}] {c.name}: {c.detail}" for c in self.checks]
        return "\n".join(lines)


def example_requests(manifest: Manifest) -> list[dict[str, Any]]:
    """The seed's requests when the model takes their features, else the model's example instance."""
    if set(manifest.feature_names) == set(SEED_EXAMPLES[0]):
        return [dict(e) for e in SEED_EXAMPLES]
    return [example_instance(manifest.features)]


def valid_prediction(value: Any, manifest: Manifest) -> bool:
    if manifest.task == "classification":
        classes = manifest.classes or ()
        return value in classes if classes else value is not None
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _bad_request(example: Mapping[str, Any]) -> dict[str, Any]:
    first = next(iter(example))
    return {**example, first: "not-a-number"}


class _Smoke:
    """One smoke run: each method is one check and appends its verdict."""

    def __init__(self, client: httpx.Client, expected_version: str | None) -> None:
        self.client = client
        self.expected = expected_version
        self.checks: list[SmokeCheck] = []
        self.manifest: Manifest | None = None

    def check(self, name: str, passed: bool, detail: str) -> bool:
        self.checks.append(SmokeCheck(name, passed, detail))
        log.info("smoke %s: %s (%s)", name, "ok" if passed else "FAIL", detail)
        return passed

    def ready(self, wait_s: float) -> bool:
        deadline = time.monotonic() + wait_s
        status: int | str = "no answer"
        while True:
            try:
                status = self.client.get("/ready").status_code
            except httpx.TransportError as exc:
                status = type(exc).__name__
            if status == 200 or time.monotonic() >= deadline:
                return self.check("/ready", status == 200, f"status {status}")
            time.sleep(0.5)

    def model(self) -> bool:
        response = self.client.get("/model")
        if response.status_code != 200:
            return self.check("/model", False, f"status {response.status_code}")
        try:
            self.manifest = Manifest.from_dict(response.json(), "/model")
        except ManifestError as exc:
            return self.check("/model", False, str(exc))
        served = self.manifest.version
        ok = self.expected is None or served == self.expected
        return self.check("/model version", ok, f"serves {served}, expected {self.expected or 'any'}")

    def single(self, example: Mapping[str, Any], manifest: Manifest) -> None:
        response = self.client.post("/predict", json=example)
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        ok = (
            response.status_code == 200
            and valid_prediction(body.get("prediction"), manifest)
            and body.get("model_version") == manifest.version
        )
        self.check(f"predict {example}", ok, f"status {response.status_code}, prediction {body.get('prediction')!r}")

    def batch(self, examples: list[dict[str, Any]], manifest: Manifest) -> None:
        response = self.client.post("/predict", json={"instances": examples})
        body = response.json() if response.status_code == 200 else {}
        # Each item is {"prediction": ..., "probabilities": ...}; a bare value is accepted too.
        predictions = [p.get("prediction") if isinstance(p, dict) else p for p in body.get("predictions", [])]
        ok = (
            response.status_code == 200
            and len(predictions) == len(examples) == body.get("count")
            and all(valid_prediction(p, manifest) for p in predictions)
        )
        self.check(f"batch of {len(examples)}", ok, f"status {response.status_code}, predictions {predictions!r}")

    def rejects(self, bad: Mapping[str, Any]) -> None:
        status = self.client.post("/predict", json=bad).status_code
        self.check("bad request gets 422", status == 422, f"{bad} -> status {status}")


def smoke(
    url: str,
    expected_version: str | None = None,
    *,
    timeout_s: float = 10.0,
    ready_wait_s: float = 30.0,
    api_key: str | None = None,
    client_factory: Callable[[str], httpx.Client] | None = None,
) -> SmokeResult:
    """Check a running service: /ready, /model's version, the seed's requests, one batch, one 422.

    Args:
        url: base URL of the service, e.g. http://127.0.0.1:8101.
        expected_version: the model version /model must report (None: any).
        timeout_s: per-request timeout.
        ready_wait_s: how long /ready may take to turn 200 (a rollout in progress).
        api_key: sent as `Authorization: Bearer` (stacks with auth.required).
        client_factory: builds the HTTP client (tests pass one with a mock transport).

    Returns:
        SmokeResult; `passed` is True only when every check passed.
    """
    headers = {
        sources.SOURCE_HEADER: sources.SMOKE
    }  # synthetic: kept out of the live analyses (the key needs `synthetic`)
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    factory = client_factory or (lambda base: httpx.Client(base_url=base, timeout=timeout_s))
    with factory(url.rstrip("/")) as client:
        client.headers.update(headers)
        run = _Smoke(client, expected_version)
        try:
            if run.ready(ready_wait_s) and run.model() and run.manifest is not None:
                examples = example_requests(run.manifest)
                for example in examples:
                    run.single(example, run.manifest)
                run.batch(examples, run.manifest)
                run.rejects(_bad_request(examples[0]))
        except (httpx.HTTPError, ValueError) as exc:
            run.check("transport", False, f"{type(exc).__name__}: {exc}")
    passed = bool(run.checks) and all(c.passed for c in run.checks)
    served = run.manifest.version if run.manifest else None
    return SmokeResult(url, expected_version, served, passed, run.checks)


# ---- command line --------------------------------------------------------------------------------------------


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    commands.url_option(parser)
    commands.stack_options(parser, required=False)
    parser.add_argument("--expect-version", help="model version /model must report (default: the stack's)")


def _run(args: argparse.Namespace, settings: PipelineSettings) -> bool:
    url, handle = commands.stack_url(args, settings)
    expected = args.expect_version
    if expected is None and handle is not None:
        expected = handle.outputs().get(OUTPUT_MODEL_VERSION)
    result = smoke(url, expected, timeout_s=settings.http_timeout_s, api_key=commands.api_key(settings))
    commands.annotate_current(handle, SMOKE, result.passed)
    commands.out(result.summary())
    return commands.finish(args, "smoke", result, result.passed)


STAGE = commands.Stage("smoke", "smoke-test a running service", _add_arguments, _run)
