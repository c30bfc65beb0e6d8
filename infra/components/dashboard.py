"""The modelship Grafana dashboard, built with grafana-foundation-sdk (Grafana's own typed builders).

The PromQL holds no Grafana variables ($__rate_interval, $namespace): the dashboard is rendered per stack
with that stack's matchers, so every query is plain PromQL that promtool can parse in the tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from grafana_foundation_sdk.builders import dashboard as gdash
from grafana_foundation_sdk.builders import prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from infra.components import drift_rules
from infra.components.alerts import LATENCY, LOG, PREDICTIONS, REQUESTS
from service.drift import THRESHOLD, WINDOW

DATASOURCE = DataSourceRef(type_val="prometheus", uid="prometheus")
QUANTILES = (0.5, 0.9, 0.99)
# Metrics of the replicas panel that kube-state-metrics exports, not the service (tests allow exactly these).
KUBE_STATE_METRICS = (
    "kube_horizontalpodautoscaler_status_desired_replicas",
    "kube_horizontalpodautoscaler_spec_max_replicas",
)


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class PanelSpec:
    title: str
    unit: str
    queries: tuple[Query, ...]


@dataclass(frozen=True)
class DashboardSettings:
    matchers: str  # the same label matchers as the rules
    namespace: str
    hpa_name: str
    spool_max_bytes: int
    drift_window: str = drift_rules.DRIFT_WINDOW  # the window of the drift rules' recorded series


def panels(settings: DashboardSettings) -> list[PanelSpec]:
    """What the dashboard shows, as data: the tests parse every expr with promtool."""
    sel = "{" + settings.matchers + "}"
    predict = "{" + ",".join(m for m in (settings.matchers, 'route="/predict"') if m) + "}"
    errors = "{" + ",".join(m for m in (settings.matchers, 'status=~"5.."') if m) + "}"
    hpa = f'{{namespace="{settings.namespace}",horizontalpodautoscaler="{settings.hpa_name}"}}'
    log = f"{LOG}_"
    buckets = f"sum by (le) (rate({LATENCY}_bucket{predict}[5m]))"
    commits = f"sum by (le) (rate({log}commit_seconds_bucket{sel}[5m]))"
    return [
        PanelSpec("Requests by route and status", "reqps",
                  (Query(f"sum by (route, status) (rate({REQUESTS}{sel}[5m]))", "{{route}} {{status}}"),)),
        PanelSpec("Error ratio (5xx) by route", "percentunit",
                  (Query(f"sum by (route) (rate({REQUESTS}{errors}[5m])) / sum by (route) (rate({REQUESTS}{sel}[5m]))",
                         "{{route}}"),)),
        PanelSpec("/predict latency quantiles", "s",
                  tuple(Query(f"histogram_quantile({q}, {buckets})", f"p{q * 100:g}") for q in QUANTILES)),
        PanelSpec("Predictions by model version", "ops",
                  (Query(f"sum by (model_version) (rate({PREDICTIONS}{sel}[5m]))", "{{model_version}}"),)),
        PanelSpec("Prediction log queue depth", "short", (Query(f"{log}queue_depth{sel}", "{{pod}}{{instance}}"),)),
        PanelSpec("Spool bytes (limit dashed)", "bytes",
                  (Query(f"{log}spool_bytes{sel}", "{{pod}}{{instance}}"),
                   Query(f"vector({settings.spool_max_bytes})", "spool limit"))),
        PanelSpec("Oldest unflushed prediction", "s",
                  (Query(f"{log}oldest_unflushed_seconds{sel}", "{{pod}}{{instance}}"),)),
        PanelSpec("Database writes, errors and reconnects", "ops",
                  (Query(f"sum(rate({log}committed_records_total{sel}[5m]))", "committed records/s"),
                   Query(f"sum(rate({log}write_errors_total{sel}[5m]))", "write errors/s"),
                   Query(f"sum(rate({log}retries_total{sel}[5m]))", "reconnect attempts/s"),
                   Query(f"sum(rate({log}spooled_records_total{sel}[5m]))", "spooled records/s"),
                   Query(f"sum(rate({log}replayed_records_total{sel}[5m]))", "replayed records/s"))),
        PanelSpec("Database write latency (group commit)", "s",
                  tuple(Query(f"histogram_quantile({q}, {commits})", f"p{q * 100:g}") for q in (0.5, 0.99))),
        PanelSpec("Records per group commit", "short",
                  (Query(f"sum(rate({log}commit_rows_sum{sel}[5m])) / sum(rate({log}commit_rows_count{sel}[5m]))",
                         "mean records per commit"),)),
        PanelSpec("Database reachable per pod", "short", (Query(f"{log}db_up{sel}", "{{pod}}{{instance}}"),)),
        PanelSpec("Replicas against the HPA", "short",
                  (Query(f"count(up{sel} == 1)", "pods scraped"),
                   Query(f"{KUBE_STATE_METRICS[0]}{hpa}", "HPA desired"),
                   Query(f"{KUBE_STATE_METRICS[1]}{hpa}", "HPA max"))),
        *drift_panels(settings),
    ]  # fmt: skip


def drift_panels(settings: DashboardSettings) -> list[PanelSpec]:
    """PSI per feature against its threshold, and where the live values fall against the reference's bins.

    The recorded series are summed over pods and keep only the namespace (infra/components/drift_rules.py)."""
    w, ns = settings.drift_window, f'{{namespace="{settings.namespace}"}}'
    sel = "{" + settings.matchers + "}"
    return [
        PanelSpec(f"Drift: PSI per feature over {w} with the thresholds", "short",
                  (Query(f"{drift_rules.input_psi(w)}{ns}", "{{model_version}} {{feature}}"),
                   Query(f"{drift_rules.output_psi(w)}{ns}", "{{model_version}} output"),
                   Query(f"max by (model_version, feature) ({THRESHOLD}{sel})", "threshold {{feature}}"))),
        PanelSpec(f"Drift: live bin fractions against the reference (over {w})", "percentunit",
                  (Query(f"{drift_rules.live_fraction(w)}{ns}", "{{feature}} bin {{bin}} live"),
                   Query(f"{drift_rules.REFERENCE}{ns}", "{{feature}} bin {{bin}} reference"))),
        PanelSpec(f"Drift: live values counted over {w} (alerts need the reference's window)", "short",
                  (Query(f"{drift_rules.live_count(w)}{ns}", "{{model_version}}"),
                   Query(f"max by (model_version) ({WINDOW}{sel})", "minimum sample"))),
    ]  # fmt: skip


def build(settings: DashboardSettings, title: str) -> str:
    """The dashboard JSON, as the Grafana sidecar loads it from a ConfigMap."""
    board = gdash.Dashboard(title).uid(f"modelship-{settings.namespace}"[:40]).tags(["modelship"]).refresh("30s")
    board = board.time("now-3h", "now")
    for spec in panels(settings):
        panel = timeseries.Panel().title(spec.title).unit(spec.unit).datasource(DATASOURCE).span(12).height(8)
        for ref, q in zip("ABCDEFGH", spec.queries, strict=False):
            panel = panel.with_target(prometheus.Dataquery().expr(q.expr).legend_format(q.legend).ref_id(ref))
        board = board.with_panel(panel)
    return json.dumps(board.build(), cls=JSONEncoder, sort_keys=True, indent=2)
