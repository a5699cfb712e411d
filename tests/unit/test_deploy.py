"""What can be checked of deploy/ without a container engine (none runs here, nor in CI):

- every YAML and JSON file parses (multi-document YAML too);
- every environment variable the compose file and the Kubernetes manifests give a zhijian container is
  one the code reads (zhijian/settings.py);
- every command they run is a subcommand of the ``zhijian`` CLI, and the probes hit pages that exist;
- the Dockerfile copies directories that exist and runs the ``zhijian`` entry point;
- every metric the Grafana dashboard queries is one the workers or the API export.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from zhijian.cli import build_parser
from zhijian.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
IMAGE = "zhijian:latest"


def settings_variables() -> set[str]:
    return {str(f.validation_alias) for f in Settings.model_fields.values()}


def cli_commands() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return set(sub.choices)  # type: ignore[arg-type]


def documents(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def compose() -> dict[str, Any]:
    body: dict[str, Any] = documents(DEPLOY / "docker-compose.yml")[0]
    return body


def zhijian_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose()["services"].items() if s.get("image") == IMAGE}


def manifests() -> list[dict[str, Any]]:
    return [d for path in sorted((DEPLOY / "k8s").glob("*.yaml")) for d in documents(path)]


def zhijian_containers() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for doc in manifests():
        spec = doc.get("spec", {})
        pod = spec.get("template", {}).get("spec", {})
        out.extend(c for c in pod.get("containers", []) if c.get("image") == IMAGE)
    return out


@pytest.mark.parametrize("path", sorted(p.relative_to(ROOT).as_posix() for p in DEPLOY.rglob("*")
                                        if p.suffix in (".yml", ".yaml", ".json")))
def test_every_deploy_file_parses(path: str) -> None:
    file = ROOT / path
    if file.suffix == ".json":
        assert json.loads(file.read_text(encoding="utf-8"))
    else:
        assert documents(file)


def test_compose_runs_kafka_postgres_and_scalable_workers_and_apis() -> None:
    services = compose()["services"]
    assert services["kafka"]["image"].startswith("apache/kafka")
    assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper
    assert services["postgres"]["image"].startswith("postgres")
    mine = zhijian_services()
    assert {s["command"][0] for s in mine.values()} == {"topics", "worker", "api"}
    for name in ("worker", "api"):  # --scale needs no fixed container name and no single host port
        assert "container_name" not in mine[name]
    assert "ports" not in mine["worker"]
    assert mine["api"]["ports"] == ["8000-8009:8000"]


def test_compose_gives_zhijian_only_variables_it_reads_and_commands_it_has() -> None:
    known, commands = settings_variables(), cli_commands()
    for name, service in zhijian_services().items():
        unknown = set(service["environment"]) - known
        assert not unknown, f"{name}: {unknown} are not read by zhijian/core/settings.py"
        assert service["command"][0] in commands, name
    worker_env = zhijian_services()["worker"]["environment"]
    assert worker_env["ZHIJIAN_WORKER_URLS"].startswith("dns+http://worker:")


def test_kubernetes_gives_zhijian_only_variables_it_reads_and_commands_it_has() -> None:
    known, commands = settings_variables(), cli_commands()
    config = next(d for d in manifests() if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "zhijian")
    assert not set(config["data"]) - known, set(config["data"]) - known
    containers = zhijian_containers()
    assert {c["args"][0] for c in containers} == {"topics", "worker", "api"}
    for container in containers:
        assert container["args"][0] in commands
        names = {e["name"] for e in container.get("env", [])}
        assert not names - known, f"{container['name']}: {names - known}"
        assert container["envFrom"] == [{"configMapRef": {"name": "zhijian"}}]


def test_kubernetes_deployments_probe_pages_that_exist() -> None:
    deployments = {d["metadata"]["name"]: d for d in manifests() if d["kind"] == "Deployment"}
    assert set(deployments) == {"zhijian-worker", "zhijian-api"}
    worker = deployments["zhijian-worker"]["spec"]["template"]["spec"]["containers"][0]
    api = deployments["zhijian-api"]["spec"]["template"]["spec"]["containers"][0]
    assert worker["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/healthz"
    views = (ROOT / "stream" / "views.py").read_text(encoding="utf-8")
    app = (ROOT / "api" / "app.py").read_text(encoding="utf-8")
    assert '@app.page("/healthz")' in views and '@app.page("/zhijian/health/")' in views
    assert re.search(r'@app\.get\("/healthz"[,)]', app)
    service = next(d for d in manifests() if d["kind"] == "Service" and d["metadata"]["name"] == "zhijian-worker")
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    config = next(d for d in manifests() if d["kind"] == "ConfigMap")
    assert config["data"]["ZHIJIAN_WORKER_URLS"] == "dns+http://zhijian-worker:6066"


def test_dockerfile_copies_what_exists_and_runs_the_cli() -> None:
    lines = (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
    copied = [line.split()[1] for line in lines if line.startswith("COPY ")]
    assert copied and all((ROOT / c).exists() for c in copied), copied
    for package in ("zhijian", "stream", "detectors", "api", "dashboard"):
        assert package in copied
    assert 'ENTRYPOINT ["zhijian"]' in lines
    assert "zhijian" in (ROOT / "pyproject.toml").read_text(encoding="utf-8")  # the entry point's package


def exported_metrics() -> set[str]:
    names = set()
    for path in (ROOT / "stream" / "metrics.py", ROOT / "api" / "metrics.py"):
        names |= set(re.findall(r'"(zhijian_[a-z_]+)"', path.read_text(encoding="utf-8")))
    return names


def test_the_dashboard_and_scrape_config_use_what_is_exported() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "zhijian-dashboard.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"zhijian_[a-z_]+", e)}
    exported = exported_metrics()
    suffixes = ("_total", "_bucket", "_count", "_sum")
    for name in used:
        base = next((name[: -len(s)] for s in suffixes if name.endswith(s) and name[: -len(s)] in exported), name)
        assert base in exported, f"the dashboard queries {name}, which nothing exports"
    assert len(used) >= 10
    scrape = documents(DEPLOY / "prometheus" / "prometheus.yml")[0]
    jobs = {job["job_name"]: job for job in scrape["scrape_configs"]}
    assert jobs["zhijian-worker"]["dns_sd_configs"][0]["port"] == 6066
    assert jobs["zhijian-api"]["dns_sd_configs"][0]["port"] == 8000
