"""deploy/grafana/narrator.json and deploy/prometheus.yml against what the workers and Flower really export.

The exported names come from the real registries: narrator's metric declarations made into
prometheus_client objects exactly as the workers make them, the queue-depth collector, and
Flower's own Prometheus metrics. A panel that queries a misspelt or removed metric, groups
by a label the metric does not carry, or a metrics row of docs/operations.md with no panel fails here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.parser import text_string_to_metric_families

from narrator.tasks.metrics import METRICS, QueueDepthCollector
from tests.deploy.stack import ROOT, compose, load

DASHBOARD = ROOT / "deploy" / "grafana" / "narrator.json"
PROMETHEUS = ROOT / "deploy" / "prometheus.yml"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
#: Series Prometheus makes itself for every target, with the labels it gives them.
BUILTIN = {"up": {"job", "instance"}}
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless"}
_SUFFIXES = ("_bucket", "_sum", "_count")


class _Depths(QueueDepthCollector):
    """The real collector with the broker's answer given: the family it yields is what is under test."""

    def depths(self) -> dict[str, int]:
        return {"narrator.gpu": 3}


def narrator_series() -> dict[str, set[str]]:
    """Sample name -> label names, as a worker's /metrics shows them once every metric has a sample."""
    registry = CollectorRegistry()
    for name, (kind, doc, labels, buckets) in METRICS.items():
        if kind == "counter":
            metric: Any = Counter(name, doc, labels, registry=registry)
        else:
            metric = Histogram(name, doc, labels, buckets=buckets, registry=registry)
        child = metric.labels(*["x"] * len(labels)) if labels else metric
        child.inc() if kind == "counter" else child.observe(1.0)
    registry.register(_Depths(app=None))
    out: dict[str, set[str]] = {}
    for family in registry.collect():
        for sample in family.samples:
            out.setdefault(sample.name, set()).update(sample.labels)
    return out


def flower_series() -> set[str]:
    """Flower's metric names, read from the exposition of its own registry."""
    from flower.events import get_prometheus_metrics
    from prometheus_client import REGISTRY, generate_latest

    get_prometheus_metrics()
    names: set[str] = set()
    for family in text_string_to_metric_families(generate_latest(REGISTRY).decode()):
        if family.name.startswith("flower_"):
            suffixes = {"counter": ("_total",), "histogram": _SUFFIXES}.get(family.type, ("",))
            names.update(family.name + s for s in suffixes)
    return names


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())  # type: ignore[no-any-return]


def queries() -> Iterator[tuple[str, str]]:
    for panel in dashboard()["panels"]:
        for target in panel["targets"]:
            yield panel["title"], target["expr"]


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads (functions, keywords and label names excluded)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        if m.group() in _KEYWORDS or text[m.end():].lstrip().startswith("("):
            continue
        names.add(m.group())
    return names


def labels_used(expr: str) -> set[str]:
    grouped = re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr)
    matched = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", " ".join(re.findall(r"\{([^}]*)\}", expr)))
    return {label.strip() for group in grouped for label in group.split(",") if label.strip()} | set(matched)


@pytest.mark.parametrize(
    ("expr", "names", "labels"),
    [
        ('sum by (task) (rate(narrator_jobs_failed_total[5m])) * 60', {"narrator_jobs_failed_total"}, {"task"}),
        ('histogram_quantile(0.95, sum by (le, task) (rate(x_bucket{job="a"}[$__rate_interval])))',
         {"x_bucket"}, {"le", "task", "job"}),
        ('max by (queue) (narrator_queue_depth) / on (queue) group_left y', {"narrator_queue_depth", "y"}, {"queue"}),
        ('sum(up{job=~"narrator-.*"}) or vector(0)', {"up"}, {"job"}),
    ],
)
def test_the_promql_reader(expr: str, names: set[str], labels: set[str]) -> None:
    assert metric_names(expr) == names
    assert labels_used(expr) == labels


def test_every_metric_a_panel_queries_is_exported() -> None:
    known = set(narrator_series()) | flower_series() | set(BUILTIN)
    unknown = {(title, name) for title, expr in queries() for name in metric_names(expr) if name not in known}
    assert not unknown, f"panels query metrics nothing exports: {sorted(unknown)}"


def test_every_label_a_panel_groups_or_filters_by_is_carried() -> None:
    series = narrator_series() | BUILTIN
    for title, expr in queries():
        for name in metric_names(expr) & set(series):
            missing = labels_used(expr) - series[name]
            assert not missing, f"{title}: {name} has no label {sorted(missing)}"


def test_the_registries_are_read_for_real() -> None:
    """The sets the checks above rely on hold what docs/operations.md promises (so an empty one cannot pass them)."""
    series = narrator_series()
    assert series["narrator_jobs_failed_total"] == {"task"}
    assert series["narrator_chunk_synthesis_seconds_bucket"] == {"le"}
    assert series["narrator_queue_depth"] == {"queue"}
    assert "flower_worker_online" in flower_series()


def readme_metric_rows() -> list[set[str]]:
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text.split("\n## Monitoring\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = line.split("|")
        if line.startswith("| `narrator_") and len(cells) > 2:
            rows.append(set(re.findall(r"`(narrator_[a-z_]+)(?:\{[^}]*\})?`", cells[1])))
    return rows


def test_every_readme_metrics_row_has_a_panel() -> None:
    rows = readme_metric_rows()
    assert len(rows) >= 13, rows
    panels = [(p["title"], set().union(*(metric_names(t["expr"]) for t in p["targets"])))
              for p in dashboard()["panels"]]

    def shows(used: set[str], metric: str) -> bool:
        return metric in used or any(metric + s in used for s in _SUFFIXES)

    for row in rows:
        assert any(all(shows(used, m) for m in row) for _, used in panels), f"no panel shows {sorted(row)}"
    # And nothing in the table is missing from the workers themselves.
    exported = set(narrator_series())
    for row in rows:
        for metric in row:
            assert shows(exported, metric), f"docs/operations.md lists {metric}, which no worker exports"


def test_the_dashboard_is_well_formed() -> None:
    board = dashboard()
    source = load(PROVISIONING / "datasources" / "prometheus.yml")["datasources"][0]
    assert board["uid"] == "narrator" and board["editable"] is False
    titles = [p["title"] for p in board["panels"]]
    assert len(titles) == len(set(titles))
    assert len({p["id"] for p in board["panels"]}) == len(titles)
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        assert all(t["datasource"]["uid"] == source["uid"] for t in panel["targets"]), panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        pos = panel["gridPos"]
        mine = {(pos["x"] + dx, pos["y"] + dy) for dx in range(pos["w"]) for dy in range(pos["h"])}
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        assert pos["x"] + pos["w"] <= 24
        cells |= mine


def test_grafana_is_provisioned_from_the_files_compose_mounts() -> None:
    grafana = compose()["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = load(PROVISIONING / "dashboards" / "narrator.yml")["providers"][0]
    assert f"{provider['options']['path']}/narrator.json" == mounts["./deploy/grafana/narrator.json"]
    source = load(PROVISIONING / "datasources" / "prometheus.yml")["datasources"][0]
    assert source["url"] == "http://prometheus:9090" and "prometheus" in compose()["services"]


def test_prometheus_scrapes_every_worker_and_flower_where_they_are() -> None:
    services = compose()["services"]
    config = load(PROMETHEUS)
    mounts = [v.split(":") for v in services["prometheus"]["volumes"]]
    assert ["./deploy/prometheus.yml", "/etc/prometheus/prometheus.yml", "ro"] in mounts
    networks = set(services["prometheus"]["networks"])
    aliases: dict[str, set[str]] = {}
    for name, service in services.items():
        joined = service.get("networks") or {}
        for network, options in (joined.items() if isinstance(joined, dict) else []):
            for alias in (options or {}).get("aliases", []):
                aliases.setdefault(alias, set()).add(name)
                assert network in networks, f"{name} is found as {alias} on {network}, where Prometheus is not"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    dns_names = {n for job in jobs.values() for sd in job.get("dns_sd_configs", []) for n in sd["names"]}
    workers = {n for n, s in services.items() if s.get("command") == ["worker"]}
    found = set().union(*(aliases.get(n, set()) for n in dns_names))
    assert found == workers, f"scraped {sorted(found)}, workers {sorted(workers)}"
    for job in jobs.values():
        for sd in job.get("dns_sd_configs", []):
            assert sd["type"] == "A"
            for name in sd["names"]:
                for service in aliases[name]:
                    assert services[service]["environment"]["NARRATOR_METRICS_PORT"] == str(sd["port"]), service
                    assert services[service]["environment"]["NARRATOR_METRICS_ADDR"] == "0.0.0.0", service
    flower = jobs["flower"]
    assert flower["metrics_path"] == "/metrics"
    assert flower["static_configs"][0]["targets"] == ["flower:5555"] and "5555" in services["flower"]["expose"]
    assert set(services["flower"]["networks"]) <= networks
