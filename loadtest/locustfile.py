"""Locust personas for a modelship service; the SLO gate runs in the quitting listener.

Run it through `python -m loadtest` (or `loadtest.run.run_loadcheck`), which passes the profile's users,
spawn rate and run time, and renders the plot. Direct use:

    locust -f loadtest/locustfile.py --headless --host http://127.0.0.1:8000 -u 20 -r 10 -t 30s \
        --slo-profile local --slo-out-dir reports/loadtest
"""

from __future__ import annotations

import os
import random
import uuid
from pathlib import Path
from typing import Any

from locust import HttpUser, between, events, task
from locust.env import Environment

from loadtest import slo
from loadtest.checks import (
    check_batch,
    check_history,
    check_manifest,
    check_rejected,
    check_single,
    describe,
    invalid_payloads,
    random_instance,
)
from loadtest.run import API_KEY_ENV
from loadtest.timeline import Timeline
from model.manifest import Manifest, ManifestError
from service.sources import LOADCHECK, SOURCE_HEADER

TIMELINE = Timeline()
_schema: Manifest | None = None  # the model under test, read once from /model


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _judge(response: Any, problem: str | None) -> None:
    if problem:
        response.failure(problem)
    else:
        response.success()


class ModelUser(HttpUser):
    """Base persona: knows the loaded model's schema and tags every request with an X-Request-ID."""

    abstract = True

    def on_start(self) -> None:
        self.rng = random.Random()
        self.client.headers[SOURCE_HEADER] = LOADCHECK  # synthetic: kept out of the live analyses
        if api_key := os.environ.get(API_KEY_ENV):  # stacks with auth.required
            self.client.headers["Authorization"] = f"Bearer {api_key}"

    def schema(self) -> Manifest | None:
        """The schema from /model, fetched by the first user that needs it (a failure is recorded)."""
        global _schema
        if _schema is None:
            with self.client.get("/model", name="/model [schema]", catch_response=True) as response:
                body = _json(response)
                if response.status_code != 200 or not isinstance(body, dict):
                    response.failure(f"cannot read the model schema: status {response.status_code}")
                    return None
                try:
                    _schema = Manifest.from_dict(body, "/model")
                except ManifestError as exc:
                    response.failure(f"manifest does not match the contract: {exc!r}")
                    return None
                response.success()
        return _schema

    def post_predict(self, payload: object, name: str) -> tuple[Any, str]:
        request_id = uuid.uuid4().hex
        response = self.client.post(
            "/predict", json=payload, name=name, headers={"X-Request-ID": request_id}, catch_response=True
        )
        return response, request_id


class ApiClient(ModelUser):
    """Most of the traffic: one instance per request, values drawn from the manifest's ranges."""

    weight = 16
    wait_time = between(0.05, 0.15)

    @task
    def predict_one(self) -> None:
        schema = self.schema()
        if schema is None:
            return
        instance = random_instance(schema, self.rng)
        response, request_id = self.post_predict(instance, "/predict")
        with response:
            body = _json(response)
            problem = check_single(response.status_code, body, schema, instance, request_id)
            if problem is None and response.headers.get("X-Request-ID") != request_id:
                problem = "X-Request-ID header not echoed"
            _judge(response, problem)


class BatchClient(ModelUser):
    """Offline scoring jobs: {"instances": [...]} of 10 to 500 rows."""

    weight = 1
    wait_time = between(0.5, 1.5)

    @task
    def predict_batch(self) -> None:
        schema = self.schema()
        if schema is None:
            return
        size = self.rng.randint(10, 500)
        instances = [random_instance(schema, self.rng) for _ in range(size)]
        response, request_id = self.post_predict({"instances": instances}, "/predict [batch]")
        with response:
            _judge(response, check_batch(response.status_code, _json(response), schema, size, request_id))


class DashboardReader(ModelUser):
    """A dashboard polling recent predictions (following the cursor once) and the model card."""

    weight = 1
    wait_time = between(1.0, 3.0)
    page = 20

    @task(3)
    def recent_predictions(self) -> None:
        params: dict[str, int] = {"limit": self.page}
        with self.client.get("/predictions", params=params, name="/predictions", catch_response=True) as r:
            body = _json(r)
            _judge(r, check_history(r.status_code, body, self.page))
        cursor = body.get("next_before") if isinstance(body, dict) else None
        if isinstance(cursor, int) and not isinstance(cursor, bool):
            params["before"] = cursor
            with self.client.get("/predictions", params=params, name="/predictions?before=", catch_response=True) as r:
                _judge(r, check_history(r.status_code, _json(r), self.page))

    @task(1)
    def model_card(self) -> None:
        schema = self.schema()
        if schema is None:
            return
        with self.client.get("/model", name="/model", catch_response=True) as r:
            _judge(r, check_manifest(r.status_code, _json(r), schema))


class InvalidClient(ModelUser):
    """A small share of bad payloads: a 422 with the error envelope is the right answer."""

    weight = 2
    wait_time = between(0.5, 1.5)

    @task
    def send_invalid(self) -> None:
        schema = self.schema()
        if schema is None:
            return
        _kind, payload = self.rng.choice(invalid_payloads(schema, self.rng))
        response, _request_id = self.post_predict(payload, "/predict [invalid]")
        with response:
            _judge(response, check_rejected(response.status_code, _json(response)))


def _add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("modelship SLO gate")
    group.add_argument("--slo-profile", default="", help="profile of loadtest/profiles.toml to gate on")
    group.add_argument("--slo-profiles-file", default="", help="another profiles file (tests)")
    group.add_argument("--slo-out-dir", default="reports/loadtest", help="summary, verdict, timeseries")
    group.add_argument("--slo-duration-s", type=float, default=None, help="run time actually used")


def _record(request_type: str, name: str, response_time: float, exception: Any, **kwargs: Any) -> None:
    started_at = kwargs.get("start_time")
    if started_at is not None:
        TIMELINE.record(float(started_at), f"{request_type} {name}", float(response_time), exception is not None)


def _gate(environment: Environment, **_kwargs: Any) -> None:
    options = environment.parsed_options
    if options is not None and options.slo_profile:
        out_dir = Path(options.slo_out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        TIMELINE.write_csv(out_dir / slo.TIMESERIES_FILE)
    slo.on_quitting(environment, model=describe(_schema) if _schema else None)


events.init_command_line_parser.add_listener(_add_arguments)  # type: ignore[no-untyped-call]
events.request.add_listener(_record)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_gate)  # type: ignore[no-untyped-call]
