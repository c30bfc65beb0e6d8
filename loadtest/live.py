"""Locust persona of users' own traffic: no X-Modelship-Source, so every request counts as `live`.

The release gate (`loadtest/locustfile.py`) marks its requests `loadcheck` to keep them out of the drift,
quality, canary and shadow analyses. This file is the other half: it plays the users those analyses are about,
for a canary or shadow drill against a local stack, or against any environment where that is wanted:

    locust -f loadtest/live.py --headless --host http://127.0.0.1:8000 -u 8 -r 8 -t 60s

Where the stack requires auth, MODELSHIP_LOADTEST_API_KEY holds a key with the `predict` and `read` scopes (the
same variable as the release gate's; it needs no `synthetic` scope, since these requests are live).
MODELSHIP_LIVE_WAIT="MIN,MAX" sets each user's pause between requests in seconds (default 0.01,0.05).

Each request opens a new connection (`Connection: close`), as many short visits do: a Service (kube-proxy, or
HAProxy for the local target) spreads connections, so a kept-alive client would stay on one pod and one arm.
Only requests are checked here, never an SLO: a 2xx must carry an answer for the request id sent, and anything
else is a failure. Any version may answer (a canary's or stable's), and the values are drawn from the middle of
the training ranges, which every version of the recipe accepts.
"""

from __future__ import annotations

import os
import random
import uuid
from typing import Any

from locust import HttpUser, between, task

from loadtest.checks import check_prediction, random_instance
from loadtest.run import API_KEY_ENV
from model.manifest import Manifest, ManifestError

INNER = 0.1  # a tenth of each feature's training range kept off each end
WAIT_ENV = "MODELSHIP_LIVE_WAIT"
_schema: Manifest | None = None  # the model behind the Service, read once from /model


def _wait() -> tuple[float, float]:
    raw = os.environ.get(WAIT_ENV, "0.01,0.05")
    try:
        low, high = (float(part) for part in raw.split(","))
    except ValueError:
        raise SystemExit(f"{WAIT_ENV} takes MIN,MAX in seconds (e.g. 0.1,0.3), got {raw!r}") from None
    return low, high


class LiveUser(HttpUser):
    """One instance per request, values drawn from the model's ranges, sent as a user sends them."""

    wait_time = between(*_wait())

    def on_start(self) -> None:
        self.rng = random.Random()
        self.client.headers["Connection"] = "close"
        if api_key := os.environ.get(API_KEY_ENV):  # stacks with auth.required
            self.client.headers["Authorization"] = f"Bearer {api_key}"

    def schema(self) -> Manifest | None:
        global _schema
        if _schema is None:
            with self.client.get("/model", name="/model [schema]", catch_response=True) as response:
                try:
                    _schema = Manifest.from_dict(response.json(), "/model")
                except (ValueError, ManifestError) as exc:
                    response.failure(f"cannot read the model schema (status {response.status_code}): {exc}")
                    return None
                response.success()
        return _schema

    @task
    def predict_one(self) -> None:
        schema = self.schema()
        if schema is None:
            return
        instance = random_instance(schema, self.rng, inner=INNER)
        request_id = uuid.uuid4().hex
        with self.client.post("/predict", json=instance, name="/predict [live]", headers={"X-Request-ID": request_id},
                              catch_response=True) as response:  # fmt: skip
            problem = _problem(response, schema, request_id)
            if problem:
                response.failure(problem)
            else:
                response.success()


def _problem(response: Any, schema: Manifest, request_id: str) -> str | None:
    if response.status_code != 200:
        return f"status {response.status_code}: {response.text[:200]}"
    try:
        body = response.json()
    except ValueError:
        return "the 200's body is not JSON"
    if not isinstance(body, dict) or body.get("request_id") != request_id:
        return "the answer does not carry the X-Request-ID sent"
    return check_prediction(body, schema)
