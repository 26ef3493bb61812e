"""The Grafana dashboard in deploy/grafana/ and its wiring in docker-compose.yml.

Every PromQL expression of the dashboard is checked against a live scrape: the real
stack (gRPC server, REST shim sharing its metrics, as ``python -m server --with-rest``
runs them) gets a little traffic so that every series exists, then /metrics is parsed
and each metric name, label matcher and grouping label of the dashboard must be in it.
No Grafana or Prometheus runs here: the provisioning files are checked as files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from generated.llm.v1 import llm_service_pb2 as pb
from ollama_emulator import Emulator
from tests.conftest import LocalShimStarter, StackFactory
from tests.deploy_files import ROOT, interpolate

COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus.yml"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "llm-service.json"
DS_VARIABLE = "DS_PROMETHEUS"
DS_REF = {"type": "prometheus", "uid": "${" + DS_VARIABLE + "}"}
GRID_WIDTH = 24
# Grafana 12's dashboard schema (classic JSON model)
MIN_SCHEMA_VERSION = 41

# The series operators expect on the dashboard: each must be read by some panel.
EXPECTED_METRICS = {
    "llm_requests_total",
    "llm_request_cancellations_total",
    "llm_e2e_request_latency_seconds_bucket",
    "llm_time_to_first_token_seconds_bucket",
    "llm_time_per_output_token_seconds_bucket",
    "llm_prompt_tokens_total",
    "llm_generation_tokens_total",
    "llm_num_requests_running",
    "llm_num_requests_waiting",
    "llm_ollama_host_up",
    "llm_ollama_host_in_flight",
    "llm_ollama_retries_total",
    "llm_lane_running",
    "llm_lane_waiting",
    "llm_lane_slots",
    "llm_fallbacks_total",
    "llm_caller_requests_total",
    "llm_caller_tokens_total",
    "llm_ledger_rows_written_total",
    "llm_ledger_dropped_rows_total",
    "llm_http_requests_total",
    "llm_http_request_duration_seconds_bucket",
}

# -- PromQL, as far as the dashboard uses it ---------------------------------------------

STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
METRIC = re.compile(r"\b(llm_[a-z0-9_]+)\b")
SELECTOR = re.compile(r"\b(llm_[a-z0-9_]+)\s*(?:\{([^}]*)\})?")
MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(\"(?:[^\"\\]|\\.)*\")")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
RATED = re.compile(r"\b(?:rate|irate|increase)\s*\(\s*(llm_[a-z0-9_]+)")
QUANTILE = re.compile(r"histogram_quantile\s*\(\s*([0-9.]+)\s*,")
LABEL_VALUES = re.compile(r"^label_values\(\s*(llm_[a-z0-9_]+)\s*,\s*([A-Za-z_]\w*)\s*\)$")


def metrics_in(expr: str) -> set[str]:
    return set(METRIC.findall(STRING.sub('""', expr)))


def selectors(expr: str) -> Iterator[tuple[str, list[tuple[str, str, str]]]]:
    """(metric, [(label, operator, quoted value)]) for each metric the expression reads."""
    for match in SELECTOR.finditer(expr):
        yield match.group(1), MATCHER.findall(match.group(2) or "")


def grouping_labels(expr: str) -> set[str]:
    found: set[str] = set()
    for group in GROUPING.findall(STRING.sub('""', expr)):
        found |= {name.strip() for name in group.split(",") if name.strip()}
    return found


def balanced(expr: str) -> bool:
    opened: list[str] = []
    closing = {")": "(", "]": "[", "}": "{"}
    for char in STRING.sub('""', expr):
        if char in "([{":
            opened.append(char)
        elif char in closing and (not opened or opened.pop() != closing[char]):
            return False
    return not opened


# -- the files ---------------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    loaded = json.loads(DASHBOARD.read_text())
    assert isinstance(loaded, dict)
    return loaded


def panels(board: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every panel, including those inside collapsed rows."""
    found: list[dict[str, Any]] = []
    for panel in board["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def query_panels(board: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [p for p in panels(board) if p["type"] != "row"]


def exprs(board: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) of every query."""
    return [(p["title"], t["expr"]) for p in query_panels(board) for t in p["targets"]]


def variable(board: Mapping[str, Any], name: str) -> dict[str, Any]:
    (found,) = [v for v in board["templating"]["list"] if v["name"] == name]
    assert isinstance(found, dict)
    return found


def yaml_file(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict), path
    return loaded


def compose() -> dict[str, Any]:
    """docker-compose.yml as compose sees it with nothing set (no shell, no .env)."""
    value = interpolate(yaml_file(COMPOSE), {})
    assert isinstance(value, dict)
    return value


def service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"docker-compose.yml has no service {name!r}"
    found = services[name]
    assert isinstance(found, dict)
    return found


def bind_mounts(svc: Mapping[str, Any]) -> dict[PurePosixPath, Path]:
    """Container path -> host path of a service's bind mounts (named volumes left out)."""
    mounts: dict[PurePosixPath, Path] = {}
    for volume in svc.get("volumes", []):
        source, target, *_ = str(volume).split(":")
        if source.startswith(("./", "../", "/")):
            mounts[PurePosixPath(target)] = (ROOT / source).resolve()
    return mounts


def host_path(mounts: Mapping[PurePosixPath, Path], inside: str) -> Path:
    """Where a path inside the container comes from on the host (the deepest mount)."""
    path = PurePosixPath(inside)
    covering = [t for t in mounts if path == t or t in path.parents]
    assert covering, f"{inside} is not mounted from the repository"
    target = max(covering, key=lambda t: len(t.parts))
    return mounts[target].joinpath(*path.relative_to(target).parts)


def container_port(svc: Mapping[str, Any]) -> str:
    (port,) = svc["ports"]
    return str(port).rsplit(":", 1)[-1].split("/")[0]


# -- a live scrape -----------------------------------------------------------------------


@dataclass
class Scrape:
    types: dict[str, str] = field(default_factory=dict)  # sample name -> family type
    labels: dict[str, set[str]] = field(default_factory=dict)  # sample name -> label names

    def add(self, text: str) -> None:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.types[sample.name] = family.type
                self.labels.setdefault(sample.name, set()).update(sample.labels)


@pytest.fixture
async def scrape(
    make_stack: StackFactory,
    start_local_shim: LocalShimStarter,
    emulator: Emulator,
    tmp_path: Path,
) -> Scrape:
    """/metrics of the stack as one process runs it, after traffic that creates every
    series: a chat and a stream via REST, a failed request, a fallback, a cancelled
    stream."""
    stack = await make_stack(
        fallbacks=(("gone-model", ("llama3.2",)),), ledger=True, data_dir=str(tmp_path)
    )
    url = await start_local_shim(stack.server)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        chat = await client.post("/chat", json={"message": "one two", "model": "llama3.2"})
        assert chat.status_code == 200, chat.text
        async with client.stream(
            "POST", "/chat/stream", json={"message": "three four", "model": "llama3.2"}
        ) as streamed:
            assert streamed.status_code == 200
            await streamed.aread()
        missing = await client.post("/chat", json={"message": "x", "model": "ghost-model"})
        assert missing.status_code == 404
        fell_back = await client.post("/chat", json={"message": "x", "model": "gone-model"})
        assert fell_back.headers["x-llm-fallback-from"] == "gone-model"
        emulator.faults.token_delay = 0.1
        call = stack.stub.ChatStream(
            pb.ChatStreamRequest(request=pb.ChatRequest(message="a b c d e", model="llama3.2"))
        )
        await call.read()
        call.cancel()
        await stack.server.stats.wait_for_total(5)
        reply = await client.get("/metrics")
    assert reply.status_code == 200
    found = Scrape()
    found.add(reply.text)
    return found


async def test_every_query_reads_only_what_the_service_exports(scrape: Scrape) -> None:
    board = dashboard()
    used: set[str] = set()
    for title, expr in exprs(board):
        where = f"{title}: {expr}"
        assert balanced(expr), where
        names = metrics_in(expr)
        assert names, f"{where} reads no llm_ metric"
        missing = names - set(scrape.types)
        assert not missing, f"{where} reads {sorted(missing)}, which /metrics does not have"
        used |= names
        for metric, matchers in selectors(expr):
            for label, operator, value in matchers:
                assert label in scrape.labels[metric], f"{where}: {metric} has no {label!r}"
                if "$model" in value:
                    assert operator == "=~", f"{where}: $model can be several models"
            # the model variable filters every series that has a model
            if "model" in scrape.labels[metric]:
                assert ("model", "=~", '"$model"') in matchers, f"{where}: {metric} ignores $model"
        for label in grouping_labels(expr):
            for metric in names:
                assert label in scrape.labels[metric], f"{where}: {metric} has no {label!r}"
        for metric in RATED.findall(expr):
            assert scrape.types[metric] in ("counter", "histogram"), f"{where}: rate of a gauge"
        if "histogram_quantile" in expr:
            assert all(m.endswith("_bucket") for m in names), where
            assert "le" in grouping_labels(expr), f"{where}: quantiles need `by (le, ...)`"
    unread = EXPECTED_METRICS - used
    assert not unread, f"no panel reads {sorted(unread)}"


async def test_model_variable_lists_the_models_of_the_request_counter(scrape: Scrape) -> None:
    model = variable(dashboard(), "model")
    query = model["query"]
    text = query["query"] if isinstance(query, dict) else query
    assert model["definition"] == text
    match = LABEL_VALUES.match(text)
    assert match, text
    metric, label = match.groups()
    assert (metric, label) == ("llm_requests_total", "model")
    assert label in scrape.labels[metric]
    assert model["multi"] and model["includeAll"] and model["allValue"] == ".*"
    assert model["datasource"] == DS_REF


# -- the dashboard as a file ---------------------------------------------------------------


def test_dashboard_is_current_grafana_json_on_the_prometheus_variable() -> None:
    board = dashboard()
    assert board["schemaVersion"] >= MIN_SCHEMA_VERSION
    assert board["uid"] and board["title"]
    assert board.get("id") is None, "provisioned dashboards get their id from Grafana"
    ds = variable(board, DS_VARIABLE)
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids)), "panel ids are unique"


def test_every_panel_has_a_title_and_queries_on_the_datasource_variable() -> None:
    board = dashboard()
    for panel in panels(board):
        assert panel.get("title"), panel
        if panel["type"] == "row":
            assert not panel.get("targets"), f"row {panel['title']} has queries"
            continue
        title = panel["title"]
        assert panel["datasource"] == DS_REF, title
        targets = panel.get("targets")
        assert targets, f"{title} has no queries"
        refs = [t["refId"] for t in targets]
        assert len(refs) == len(set(refs)), title
        for target in targets:
            assert target["expr"].strip(), title
            assert target["datasource"] == DS_REF, title


def test_panels_fit_the_grid_without_overlapping() -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in dashboard()["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= GRID_WIDTH, panel
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


def test_latency_panels_show_the_expected_quantiles() -> None:
    wanted = {
        "llm_e2e_request_latency_seconds_bucket": {"0.5", "0.95", "0.99"},
        "llm_time_to_first_token_seconds_bucket": {"0.5", "0.95"},
        "llm_time_per_output_token_seconds_bucket": {"0.5", "0.95"},
        "llm_http_request_duration_seconds_bucket": {"0.95"},
    }
    shown: dict[str, set[str]] = {}
    for _, expr in exprs(dashboard()):
        for metric in metrics_in(expr):
            shown.setdefault(metric, set()).update(QUANTILE.findall(expr))
    for metric, quantiles in wanted.items():
        assert quantiles <= shown.get(metric, set()), metric
    # per model where there is a model, per route on the REST face
    for _, expr in exprs(dashboard()):
        if "histogram_quantile" in expr and "by (le)" not in expr:
            names = metrics_in(expr)
            by = "route" if "llm_http_request_duration_seconds_bucket" in names else "model"
            assert by in grouping_labels(expr), expr


# -- provisioning and docker-compose -----------------------------------------------------


def test_grafana_runs_only_in_the_monitoring_profile() -> None:
    grafana = service("grafana")
    assert grafana["profiles"] == ["monitoring"]
    assert service("prometheus")["profiles"] == ["monitoring"]
    assert "prometheus" in grafana["depends_on"]
    assert container_port(grafana) == "3000"
    assert "3000:3000" in grafana["ports"]
    for name in ("vllm", "ollama", "ollama-pull"):
        assert "grafana" not in service(name).get("depends_on", {}), name


def test_provisioned_datasource_is_the_compose_prometheus() -> None:
    grafana = service("grafana")
    directory = host_path(bind_mounts(grafana), "/etc/grafana/provisioning/datasources")
    assert directory.is_dir() and directory.is_relative_to(GRAFANA)
    sources = [
        s for f in sorted(directory.glob("*.y*ml")) for s in yaml_file(f).get("datasources", [])
    ]
    (prometheus,) = [s for s in sources if s["type"] == "prometheus"]
    assert prometheus["url"] == f"http://prometheus:{container_port(service('prometheus'))}"
    assert prometheus["access"] == "proxy" and prometheus["isDefault"] is True
    scrape_interval = yaml_file(PROMETHEUS)["global"]["scrape_interval"]
    assert prometheus["jsonData"]["timeInterval"] == scrape_interval
    # the dashboard's datasource variable picks this one by default
    current = variable(dashboard(), DS_VARIABLE)["current"]
    assert current["value"] == prometheus["uid"]
    assert current["text"] == prometheus["name"]


def test_provisioned_dashboard_provider_loads_this_dashboard() -> None:
    grafana = service("grafana")
    mounts = bind_mounts(grafana)
    directory = host_path(mounts, "/etc/grafana/provisioning/dashboards")
    assert directory.is_dir() and directory.is_relative_to(GRAFANA)
    providers = [
        p for f in sorted(directory.glob("*.y*ml")) for p in yaml_file(f).get("providers", [])
    ]
    (provider,) = providers
    assert provider["type"] == "file"
    loaded = host_path(mounts, provider["options"]["path"])
    assert DASHBOARD.resolve() in loaded.glob("*.json")
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert host_path(mounts, home) == DASHBOARD.resolve()
    assert all(str(v).endswith(":ro") for v in grafana["volumes"] if str(v).startswith("./"))
