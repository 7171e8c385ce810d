"""examples/kubernetes/: the manifests parse, refer to each other correctly, and time a pod's
termination so that a rolling update loses no request.

The timing rule: Kubernetes runs preStop, then sends SIGTERM, and sends SIGKILL when
terminationGracePeriodSeconds (counted from the start of preStop) runs out; gunicorn needs up
to GRACEFUL_TIMEOUT seconds after SIGTERM. So the period must exceed preStop's sleep plus
GRACEFUL_TIMEOUT, and a liveness probe must not kill a pod that is still draining.
"""

from __future__ import annotations

import asyncio
import copy
import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "examples" / "kubernetes"
HEALTH_PATH = "/healthz"


def documents() -> dict[str, dict[str, Any]]:
    """Every manifest in the directory (not the kustomization), keyed by kind."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc["kind"] not in found, f"two {doc['kind']} manifests"
            found[doc["kind"]] = doc
    return found


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict[str, Any]]:
    return documents()


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_value(deployment: dict[str, Any], name: str) -> str:
    values = [e["value"] for e in container(deployment).get("env", []) if e["name"] == name]
    assert values, f"the container sets no {name}"
    return values[0]


def prestop_sleep(deployment: dict[str, Any]) -> int:
    command = container(deployment)["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep" and len(command) == 2, command
    return int(command[1])


def termination_problems(deployment: dict[str, Any]) -> list[str]:
    """What in this Deployment would let a pod's termination cut requests short."""
    problems = []
    spec = deployment["spec"]["template"]["spec"]
    grace_period = spec["terminationGracePeriodSeconds"]
    graceful_timeout = int(env_value(deployment, "GRACEFUL_TIMEOUT"))
    sleep = prestop_sleep(deployment)
    if grace_period <= sleep + graceful_timeout:
        problems.append(f"terminationGracePeriodSeconds {grace_period} <= preStop sleep "
                        f"{sleep} + GRACEFUL_TIMEOUT {graceful_timeout}")
    liveness = container(deployment)["livenessProbe"]
    patience = liveness.get("periodSeconds", 10) * liveness.get("failureThreshold", 3)
    if patience < graceful_timeout:
        problems.append(f"liveness gives up after {patience} s, before GRACEFUL_TIMEOUT "
                        f"{graceful_timeout} s of draining")
    if sleep < 1:
        problems.append("no preStop sleep: new connections still arrive after SIGTERM")
    if deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] != 0:
        problems.append("maxUnavailable is not 0")
    return problems


def test_every_manifest_is_listed_in_the_kustomization() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(files)


def test_kinds_and_api_versions(manifests: dict[str, dict[str, Any]]) -> None:
    assert {kind: doc["apiVersion"] for kind, doc in manifests.items()} == {
        "Deployment": "apps/v1", "Service": "v1",
        "HorizontalPodAutoscaler": "autoscaling/v2", "PodDisruptionBudget": "policy/v1"}
    for doc in manifests.values():
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"])


def test_selectors_match_the_pods(manifests: dict[str, dict[str, Any]]) -> None:
    deployment = manifests["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selectors = {
        "Deployment": deployment["spec"]["selector"]["matchLabels"],
        "Service": manifests["Service"]["spec"]["selector"],
        "PodDisruptionBudget": manifests["PodDisruptionBudget"]["spec"]["selector"]
        ["matchLabels"],
    }
    for kind, selector in selectors.items():
        assert selector and selector.items() <= pod_labels.items(), kind


def test_service_targets_the_container_port(manifests: dict[str, dict[str, Any]]) -> None:
    deployment = manifests["Deployment"]
    ports = {p["name"]: p["containerPort"] for p in container(deployment)["ports"]}
    for port in manifests["Service"]["spec"]["ports"]:
        assert port["targetPort"] in ports
    # gunicorn listens where the container port says (the image binds 0.0.0.0:$PORT).
    assert int(env_value(deployment, "PORT")) == ports["http"]


def test_probes_ask_the_health_endpoint(manifests: dict[str, dict[str, Any]]) -> None:
    app = container(manifests["Deployment"])
    port_names = {p["name"] for p in app["ports"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        check = app[probe]["httpGet"]
        assert check["path"] == HEALTH_PATH, probe
        assert check["port"] in port_names, probe


def test_health_endpoint_answers_200() -> None:
    """The probed path is one the example app answers (tests/integration/test_deploy.py
    serves it through a real gunicorn too)."""
    spec = importlib.util.spec_from_file_location("k8s_example_main", K8S / "main.py")
    assert spec is not None and spec.loader is not None
    main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(main)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    for path, status in ((HEALTH_PATH, 200), ("/missing", 404)):
        sent.clear()
        asyncio.run(main.app({"type": "http", "path": path}, receive, send))
        assert sent[0]["status"] == status, path


def test_termination_is_timed_for_zero_loss(manifests: dict[str, dict[str, Any]]) -> None:
    deployment = manifests["Deployment"]
    assert termination_problems(deployment) == []
    spec = deployment["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] > (
        prestop_sleep(deployment) + int(env_value(deployment, "GRACEFUL_TIMEOUT")))


@pytest.mark.parametrize(("change", "problem"), [
    (lambda d: d["spec"]["template"]["spec"].update(terminationGracePeriodSeconds=30),
     "terminationGracePeriodSeconds 30 <= preStop sleep 10 + GRACEFUL_TIMEOUT 25"),
    (lambda d: container(d)["livenessProbe"].update(failureThreshold=1),
     "liveness gives up after 10 s"),
    (lambda d: container(d)["lifecycle"]["preStop"]["exec"].update(command=["sleep", "0"]),
     "no preStop sleep"),
    (lambda d: d["spec"]["strategy"]["rollingUpdate"].update(maxUnavailable=1),
     "maxUnavailable is not 0"),
])
def test_the_timing_check_catches_mistakes(manifests: dict[str, dict[str, Any]],
                                           change: Any, problem: str) -> None:
    broken = copy.deepcopy(manifests["Deployment"])
    change(broken)
    assert any(p.startswith(problem) for p in termination_problems(broken)), \
        termination_problems(broken)


def test_autoscaler_scales_the_deployment_on_requested_cpu(
        manifests: dict[str, dict[str, Any]]) -> None:
    hpa = manifests["HorizontalPodAutoscaler"]["spec"]
    deployment = manifests["Deployment"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": deployment["metadata"]["name"]}
    assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    cpu = [m for m in hpa["metrics"] if m["resource"]["name"] == "cpu"]
    assert cpu and cpu[0]["resource"]["target"]["type"] == "Utilization"
    # Utilization is a share of the request: without a CPU request the HPA cannot act.
    assert container(deployment)["resources"]["requests"]["cpu"]


def test_pod_runs_as_the_images_user(manifests: dict[str, dict[str, Any]]) -> None:
    security = manifests["Deployment"]["spec"]["template"]["spec"]["securityContext"]
    user = re.search(r"^USER (\d+):(\d+)$", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    assert user, "the base image names no numeric USER"
    assert security["runAsNonRoot"] is True
    assert (str(security["runAsUser"]), str(security["runAsGroup"])) == user.groups()


def test_the_app_image_is_two_lines() -> None:
    """A user's image: FROM the base image, COPY the app (main:app, the default APP_MODULE)."""
    lines = [line for line in (K8S / "Dockerfile").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert len(lines) == 2
    assert lines[0] == "FROM gunicorn-async-workers"
    assert lines[1].startswith("COPY main.py /app")
