"""How many requests each arm answered with a 5xx: the service's own counter, since the log holds successes only.

The prediction log records an answer once it is durable, so a request that failed (a 5xx) has no row. Each
service process counts every request it answered in `modelship_http_requests_total{route, method, status}`; the
driver reads that counter on the prediction routes for each arm at the start of a step and again at each look,
and the difference is the step's requests and errors. Two readers of the same counter:

- `ScrapedArms`: each arm's own `/metrics` (one URL per process: the local target's stable and canary services,
  or port-forwards to the pods); the sum over an arm's URLs.
- `PrometheusArms`: the Prometheus that scrapes the pods (PodMonitor, `podTargetLabels: app.kubernetes.io/version`),
  summed by the version label, so an arm is every pod of its version.

Limits, said in docs/canary.md: the counter counts every source (smoke and load checks too, not just live
traffic); a request the pod never answered (killed mid-request, refused connection) is in no counter; a counter
that went down (a process restarted) makes the step's error count unknown, never zero.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx
from prometheus_client.parser import text_string_to_metric_families

from pipelines.errors import StageError

COUNTER = "modelship_http_requests"
PREDICTION_ROUTE = re.compile(r".*(predict|infer).*")  # /predict, /v1/models/{name}:predict, /v2/.../infer
SERVER_ERROR = re.compile(r"5\d\d")


@dataclass(frozen=True)
class Requests:
    total: float
    errors: float

    def since(self, earlier: Requests) -> Requests | None:
        """The requests between EARLIER and this reading; None when a counter went down (a restart)."""
        if self.total < earlier.total or self.errors < earlier.errors:
            return None
        return Requests(self.total - earlier.total, self.errors - earlier.errors)


class ErrorSource(Protocol):
    def read(self, versions: Mapping[str, str]) -> dict[str, Requests]:
        """Per arm (e.g. stable, canary -> its model version), the requests and 5xx counted so far."""


def count_text(text: str) -> Requests:
    """Prediction requests and their 5xx in one /metrics page."""
    total = errors = 0.0
    for family in text_string_to_metric_families(text):  # without a HELP line the family is named *_total
        for sample in family.samples:
            if sample.name != f"{COUNTER}_total" or not PREDICTION_ROUTE.fullmatch(sample.labels.get("route", "")):
                continue
            total += sample.value
            if SERVER_ERROR.fullmatch(sample.labels.get("status", "")):
                errors += sample.value
    return Requests(total, errors)


@dataclass(frozen=True)
class ScrapedArms:
    # arm -> the /metrics URLs of its processes; or how to find them at each reading (the local stack's pods,
    # whose canary process exists only once the first step has deployed it)
    urls: Mapping[str, Sequence[str]] | Callable[[], Mapping[str, Sequence[str]]]
    timeout_s: float = 5.0

    def read(self, versions: Mapping[str, str]) -> dict[str, Requests]:
        urls = self.urls() if callable(self.urls) else self.urls
        return {arm: self._arm(urls.get(arm, ())) for arm in versions}

    def _arm(self, urls: Sequence[str]) -> Requests:
        if not urls:
            raise StageError("no /metrics URL for a canary arm")
        readings = []
        for url in urls:
            try:
                response = httpx.get(url, timeout=self.timeout_s)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                raise StageError(f"cannot read {url}: {exc}") from exc
            readings.append(count_text(response.text))
        return Requests(sum(r.total for r in readings), sum(r.errors for r in readings))


@dataclass(frozen=True)
class PrometheusArms:
    url: str  # the Prometheus HTTP API, e.g. http://prometheus.monitoring:9090
    version_label: str = "app_kubernetes_io_version"
    timeout_s: float = 10.0

    def read(self, versions: Mapping[str, str]) -> dict[str, Requests]:
        route = f'route=~"{PREDICTION_ROUTE.pattern}"'
        totals = self._by_version(f"sum by ({self.version_label}) ({COUNTER}_total{{{route}}})")
        errors = self._by_version(f'sum by ({self.version_label}) ({COUNTER}_total{{{route},status=~"5.."}})')
        return {arm: Requests(totals.get(v, 0.0), errors.get(v, 0.0)) for arm, v in versions.items()}

    def _by_version(self, query: str) -> dict[str, float]:
        try:
            api = f"{self.url.rstrip('/')}/api/v1/query"
            response = httpx.get(api, params={"query": query}, timeout=self.timeout_s)
            response.raise_for_status()
            results = response.json()["data"]["result"]
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise StageError(f"cannot query Prometheus at {self.url}: {exc}") from exc
        return {r["metric"].get(self.version_label, ""): float(r["value"][1]) for r in results}
