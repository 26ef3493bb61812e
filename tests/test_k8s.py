"""Kubernetes manifests (deploy/k8s/base, and the TLS overlay deploy/k8s/tls): valid
against the Kubernetes API schemas (no cluster: the schemas ship with kubernetes-validate),
and consistent with the image and the service (ports, probe paths, the user, the drain
time, the version)."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonpatch
import kubernetes_validate
import pytest
import yaml
from starlette.routing import Route

from rest_shim.app import create_app
from server.config import Settings
from tests.deploy_files import ROOT, dockerfile_stages, env_assignments

K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
TLS = K8S / "tls"
# the oldest version the manifests promise (gRPC probes are GA from 1.27 on, beta and on
# by default from 1.24) and the newest the validator knows
VERSIONS = ["1.27.0", kubernetes_validate.utils.latest_version()]
KINDS = {"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def kustomization(directory: Path) -> dict[str, Any]:
    found = load(directory / "kustomization.yaml")
    assert isinstance(found, dict)
    return found


def base_resources() -> dict[str, dict[str, Any]]:
    """The resources deploy/k8s/base/kustomization.yaml lists, by kind."""
    out: dict[str, dict[str, Any]] = {}
    for name in kustomization(BASE)["resources"]:
        for doc in yaml.safe_load_all((BASE / name).read_text()):
            assert doc["kind"] not in out, f"two {doc['kind']}s"
            out[doc["kind"]] = doc
    return out


def tls_deployment() -> dict[str, Any]:
    """The Deployment of deploy/k8s/tls: the base one with the overlay's JSON patch."""
    overlay = kustomization(TLS)
    assert overlay["resources"] == ["../base"]
    (patch,) = overlay["patches"]
    assert patch["target"] == {
        "group": "apps",
        "version": "v1",
        "kind": "Deployment",
        "name": "llm-service",
    }
    operations = load(TLS / patch["path"])
    patched = jsonpatch.apply_patch(copy.deepcopy(base_resources()["Deployment"]), operations)
    assert isinstance(patched, dict)
    return patched


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (found,) = deployment["spec"]["template"]["spec"]["containers"]
    assert isinstance(found, dict)
    return found


def container_env(deployment: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(deployment).get("env", []) if "value" in e}


def final_stage_env() -> dict[str, str]:
    stage = dockerfile_stages((ROOT / "Dockerfile").read_text())[-1]
    env: dict[str, str] = {}
    for instruction in stage.all("ENV"):
        env.update(env_assignments(instruction))
    return env


def settings_of(deployment: dict[str, Any]) -> Settings:
    """The service's settings in the pod: the image's ENV, then the container's env."""
    env = {**final_stage_env(), **container_env(deployment)}
    # PATH is the shell's; the TLS files exist in the pod only (checked by name below)
    for name in ("PATH", "GRPC_TLS_CERT", "GRPC_TLS_KEY"):
        env.pop(name, None)
    return Settings.from_env(env)


def named_port(deployment: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container(deployment)["ports"] if p["name"] == port]
    assert isinstance(number, int)
    return number


# -- schema ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_every_resource_is_valid_for_the_kubernetes_api(version: str) -> None:
    resources = base_resources()
    assert set(resources) == KINDS
    for resource in [*resources.values(), tls_deployment()]:
        try:
            kubernetes_validate.validate(resource, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{resource['kind']} (Kubernetes {version}): {exc.message}")


def test_the_validator_refuses_what_the_api_would() -> None:
    deployment = copy.deepcopy(base_resources()["Deployment"])
    container(deployment)["readinessProbe"]["grpc"]["port"] = "grpc"  # must be a number
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)
    container(deployment).pop("readinessProbe")
    container(deployment)["livenesProbe"] = {}  # a typo: strict validation catches it
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


# -- consistency with the image and the service --------------------------------------------


def test_ports_are_the_images_and_the_services_settings() -> None:
    resources = base_resources()
    deployment = resources["Deployment"]
    stage = dockerfile_stages((ROOT / "Dockerfile").read_text())[-1]
    exposed = {int(p.split("/")[0]) for e in stage.all("EXPOSE") for p in e.args.split()}
    ports = {p["name"]: p["containerPort"] for p in container(deployment)["ports"]}
    assert set(ports.values()) == exposed
    settings = settings_of(deployment)
    assert ports == {"http": settings.port, "grpc": settings.grpc_port}
    service = resources["Service"]
    assert {p["name"]: p["targetPort"] for p in service["spec"]["ports"]} == {
        "http": "http",
        "grpc": "grpc",
    }
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == ports


def test_probes_reach_what_the_service_serves() -> None:
    deployment = base_resources()["Deployment"]
    c = container(deployment)
    settings = settings_of(deployment)
    # readiness on grpc.health.v1 (overall service "") on the gRPC port
    assert c["readinessProbe"]["grpc"] == {"port": settings.grpc_port}
    paths = {r.path for r in create_app(settings).routes if isinstance(r, Route)}
    for probe in ("livenessProbe", "startupProbe"):
        http = c[probe]["httpGet"]
        assert http["path"] in paths, f"{probe}: no route {http['path']}"
        assert named_port(deployment, http["port"]) == settings.port
    # liveness must not follow Ollama's health: /livez answers while the process runs
    assert c["livenessProbe"]["httpGet"]["path"] == "/livez"


def test_termination_grace_outlasts_the_pre_stop_sleep_and_the_drain() -> None:
    deployment = base_resources()["Deployment"]
    c = container(deployment)
    command = c["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep", command
    pre_stop = float(command[1])
    assert pre_stop >= 5, "endpoints need a few seconds to drop the pod"
    drain = settings_of(deployment).shutdown_grace
    assert drain >= Settings().shutdown_grace
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > pre_stop + drain, (grace, pre_stop, drain)


def test_pods_run_as_the_images_unprivileged_user() -> None:
    stage = dockerfile_stages((ROOT / "Dockerfile").read_text())[-1]
    uid, gid = (int(x) for x in stage.all("USER")[-1].args.split(":"))
    spec = base_resources()["Deployment"]["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert (spec["securityContext"]["runAsUser"], spec["securityContext"]["runAsGroup"]) == (
        uid,
        gid,
    )
    c = container(base_resources()["Deployment"])
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert set(c["resources"]) == {"requests", "limits"}


def test_what_the_service_writes_is_on_a_volume() -> None:
    """The root filesystem is read-only: the ledger's directory (LLM_DATA_DIR, the
    image's /data) is a mounted volume, and the shared database comes from a Secret
    that may be absent."""
    deployment = base_resources()["Deployment"]
    c = container(deployment)
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    mounted = {m["mountPath"] for m in c["volumeMounts"]}
    settings = settings_of(deployment)
    assert settings.ledger and settings.data_dir in mounted
    (database,) = [e for e in c["env"] if e["name"] == "LLM_DATABASE_URL"]
    assert database["valueFrom"]["secretKeyRef"]["optional"] is True


def test_image_is_the_packages_version() -> None:
    image = container(base_resources()["Deployment"])["image"]
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert image == f"llm-service:{version}"


def test_service_budget_and_autoscaler_select_the_deployments_pods() -> None:
    resources = base_resources()
    deployment = resources["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert resources["Service"]["spec"]["selector"].items() <= labels.items()
    budget = resources["PodDisruptionBudget"]["spec"]
    assert budget["selector"]["matchLabels"].items() <= labels.items()
    hpa = resources["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": deployment["apiVersion"],
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    # a budget that every pod is needed for blocks node drains
    assert hpa["minReplicas"] > budget["minAvailable"]
    assert deployment["spec"]["replicas"] >= hpa["minReplicas"]
    # rolling updates never go below the replicas asked for
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_tls_variant_probes_with_grpc_health_probe_over_tls() -> None:
    base = base_resources()["Deployment"]
    deployment = tls_deployment()
    c = container(deployment)
    probe = c["readinessProbe"]
    assert "grpc" not in probe, "Kubernetes' gRPC probe speaks plaintext only"
    settings = settings_of(deployment)
    assert probe["exec"]["command"] == [
        "grpc_health_probe",
        f"-addr=127.0.0.1:{settings.grpc_port}",
        "-tls",
        "-tls-no-verify",
    ]
    # the image has the probe (the Dockerfile copies it onto the PATH)
    stage = dockerfile_stages((ROOT / "Dockerfile").read_text())[-1]
    copied = [i.words()[-1] for i in stage.all("COPY")]
    assert "/usr/local/bin/grpc_health_probe" in copied
    # the certificate and key are files of the mounted Secret
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    (tls_volume,) = [n for n, v in volumes.items() if "secret" in v]
    tls_dir = mounts[tls_volume]
    env = container_env(deployment)
    assert env["GRPC_TLS_CERT"] == f"{tls_dir}/tls.crt"
    assert env["GRPC_TLS_KEY"] == f"{tls_dir}/tls.key"
    # otherwise the same Deployment: only the probe, the TLS env and the Secret differ
    for key in ("readinessProbe", "env", "volumeMounts"):
        c.pop(key)
        container(base).pop(key)
    deployment["spec"]["template"]["spec"].pop("volumes")
    base["spec"]["template"]["spec"].pop("volumes")
    assert deployment == base


def test_kubectl_kustomize_builds_both_variants() -> None:
    kubectl = shutil.which("kubectl") or str(Path(sys.executable).parent / "kubectl")
    if not Path(kubectl).exists():
        pytest.skip("kubectl is not installed here (the patch is applied with jsonpatch above)")
    for directory, deployment in ((BASE, base_resources()["Deployment"]), (TLS, tls_deployment())):
        done = subprocess.run(
            [kubectl, "kustomize", str(directory)],
            env={"PATH": os.environ.get("PATH", os.defpath)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        built = {d["kind"]: d for d in yaml.safe_load_all(done.stdout)}
        assert set(built) == KINDS
        assert built["Deployment"] == deployment


def test_readme_points_at_the_manifests() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Kubernetes") :]
    assert "kubectl apply -k deploy/k8s/base" in section
    assert "kubectl apply -k deploy/k8s/tls" in section
