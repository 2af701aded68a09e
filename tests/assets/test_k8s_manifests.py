"""deploy/k8s and the pods wrmil generates, validated against the Kubernetes API schema (1.32).

``kubernetes-validate`` bundles the API's JSON schemas; ``strict=True`` also refuses unknown fields,
so a misspelt key fails here rather than in the cluster. helm is not installed where the tests run,
so the Helm values are checked by validating every Kubernetes object they embed and by comparing
them with what the generated pods use.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from wrmil_assets import k8s
from wrmil_assets.run import DAGSTER_YAML_SECTIONS
from wrmil_assets.training_launch import LaunchConfig, launch_command, pod_of
from wrmil_core.errors import WrmilInputError

K8S_VERSION = "1.32"
DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "k8s"


def valid(manifest: dict[str, Any]) -> None:
    """Raise ``kubernetes_validate.ValidationError`` unless ``manifest`` is a valid object."""
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def pod_with(container: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """A minimal Pod around a container fragment and a pod-spec fragment."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "check"},
            "spec": {**spec, "containers": [{"name": "c", "image": "i", **container}]}}


def camel(obj: Any) -> Any:
    """dagster-k8s' snake_case keys -> the API's camelCase (label keys such as ``a.b/c`` stay)."""
    if isinstance(obj, list):
        return [camel(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    fix = (lambda k: re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k) if re.fullmatch(r"[a-z]+(_[a-z]+)+", k)
           else k)
    return {fix(k): camel(v) for k, v in obj.items()}


@pytest.mark.parametrize("gpus,selector,mount", [(8, {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"}, "/data"),
                                                 (1, {"nvidia.com/gpu.product": "NVIDIA-H200"}, "/mnt/wrmil"),
                                                 (0, {}, "/data")])
def test_generated_training_pod_is_valid_and_carries_the_config(gpus: int, selector: dict, mount: str) -> None:
    launch = LaunchConfig(mode="kubernetes", nproc_per_node=max(gpus, 1), image="reg.example/wrmil:1",
                          node_selector=selector, volume_claim="claim-x", mount_path=mount)
    pod_settings = k8s.TrainingPod(**{**pod_of(launch).__dict__, "gpus": gpus})
    command = launch_command(launch, Path(mount) / "artifacts/arcface/k", {
        n: Path(mount) / f"artifacts/arcface/k/launch/{n}" for n in ("words", "splits", "config", "failure")})
    pod = k8s.training_pod(pod_settings, command, {"WRMIL_ARTIFACT_DIR": f"{mount}/artifacts"})
    valid(pod)
    (container,) = pod["spec"]["containers"]
    limits, wanted = container["resources"]["limits"], container["resources"]["requests"]
    assert limits.get(k8s.GPU_RESOURCE, 0) == wanted.get(k8s.GPU_RESOURCE, 0) == gpus
    assert bool(pod["spec"]["tolerations"]) == (gpus > 0)
    assert pod["spec"]["nodeSelector"] == selector and container["image"] == "reg.example/wrmil:1"
    assert {m["mountPath"] for m in container["volumeMounts"]} == {mount, k8s.SHM}
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "claim-x"
    assert container["command"][container["command"].index("--nproc-per-node") + 1] == str(max(gpus, 1))


def test_checked_in_generated_files_match_the_generator() -> None:
    for name in k8s.EXAMPLES:
        assert (DEPLOY / name).read_text() == k8s.render_example(name), f"run python -m wrmil_assets.k8s --write {DEPLOY}"


def test_deploy_manifests_are_valid() -> None:
    valid(yaml.safe_load((DEPLOY / "training-pod.yaml").read_text()))
    pvc = yaml.safe_load((DEPLOY / "pvc.yaml").read_text())
    valid(pvc)
    assert pvc["metadata"]["name"] == k8s.EXAMPLE.volume_claim and "ReadWriteMany" in pvc["spec"]["accessModes"]
    tag = yaml.safe_load((DEPLOY / "gpu-run-tags.yaml").read_text())["dagster-k8s/config"]
    valid(pod_with(camel(tag["container_config"]), camel(tag["pod_spec_config"])))
    assert tag["container_config"]["resources"]["limits"][k8s.GPU_RESOURCE] == k8s.EXAMPLE.gpus


def test_helm_values_embed_valid_objects_that_agree_with_the_pods() -> None:
    values = yaml.safe_load((DEPLOY / "values.yaml").read_text())
    (user,) = values["dagster-user-deployments"]["deployments"]
    valid(pod_with({"env": user["env"], "volumeMounts": user["volumeMounts"], "resources": user["resources"]},
                   {"volumes": user["volumes"]}))
    run_cfg = values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]
    valid(pod_with(run_cfg["containerConfig"], run_cfg["podSpecConfig"]))
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    # The same shared volume at the same path as the training pod, and the env the pod is given.
    assert user["volumes"][0]["persistentVolumeClaim"]["claimName"] == k8s.EXAMPLE.volume_claim
    assert user["volumeMounts"][0]["mountPath"] == k8s.EXAMPLE.mount_path
    env = {e["name"]: e["value"] for e in user["env"]}
    assert all(env[k] == v for k, v in k8s.EXAMPLE_ENV.items())
    # The `training` pool admits one step at a time, as in wrmil run's local instance.
    assert values["concurrency"]["enabled"] and values["concurrency"]["pools"]["defaultLimit"] == 1
    assert "default_limit: 1" in DAGSTER_YAML_SECTIONS["concurrency"]


@pytest.mark.parametrize("break_it", [
    lambda p: p["spec"].update(nodeSelectr=p["spec"].pop("nodeSelector")),  # misspelt field
    lambda p: p["spec"]["volumes"][0]["persistentVolumeClaim"].pop("claimName"),  # required field gone
    lambda p: p["spec"]["containers"][0].update(volumeMounts={"name": "data"}),  # a list given as a map
    lambda p: p["spec"].update(restartPolicy=3),  # wrong type
])
def test_a_broken_pod_is_rejected(break_it) -> None:
    pod = k8s.training_pod(k8s.EXAMPLE, k8s.EXAMPLE_COMMAND, k8s.EXAMPLE_ENV)
    valid(copy.deepcopy(pod))
    break_it(pod)
    with pytest.raises(kubernetes_validate.ValidationError):
        valid(pod)


def test_bad_pod_settings_are_refused_in_one_line() -> None:
    with pytest.raises(WrmilInputError, match="launch.image is empty"):
        k8s.TrainingPod(image="")
    with pytest.raises(WrmilInputError, match="launch.gpus=-1"):
        k8s.TrainingPod(image="x", gpus=-1)
    with pytest.raises(WrmilInputError, match="must be absolute"):
        k8s.TrainingPod(image="x", mount_path="data")
