"""The Kubernetes pod that trains the embedding on GPUs, as wrmil generates it.

``arcface_model`` with ``launch.mode: kubernetes`` hands this pod (metadata + spec) to
dagster-k8s' ``PipesK8sClient``; :func:`gpu_run_tags` gives the same GPUs to a whole run under
``K8sRunLauncher`` instead. ``deploy/k8s/training-pod.yaml`` and ``gpu-run-tags.yaml`` are both
rendered for the documented example (``python -m wrmil_assets.k8s --write deploy/k8s``), and
``tests/assets/test_k8s_manifests.py`` validates them against the Kubernetes API schema. The pod
requests ``nvidia.com/gpu`` (one torchrun rank per GPU), lands on the node pool picked by
``node_selector`` (tolerating the usual GPU taint), mounts the shared volume (a ReadWriteMany PVC)
at the same path as the Dagster pods, so the data root, the training directory and the failure
file are the same paths on both sides, and gets a memory-backed ``/dev/shm`` (NCCL and DataLoader
workers exchange tensors there).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from wrmil_core.errors import WrmilInputError

GPU_RESOURCE = "nvidia.com/gpu"
SHM = "/dev/shm"  # the container's shared-memory mount, not a temp file of ours  # nosec B108


@dataclass(frozen=True)
class TrainingPod:
    """What varies between clusters: image, namespace, GPUs, node pool, volume, sizes."""

    image: str
    namespace: str = "wrmil"
    gpus: int = 1
    node_selector: Mapping[str, str] = field(default_factory=dict)
    volume_claim: str = "wrmil-data"
    mount_path: str = "/data"
    cpu: str = "8"
    memory: str = "64Gi"
    shm_size: str = "16Gi"
    service_account: str = ""

    def __post_init__(self) -> None:
        if not self.image:
            raise WrmilInputError("launch.image is empty: name the container image that holds wrmil (e.g. "
                                  "registry.example.org/wrmil:0.1.0) to train on Kubernetes")
        if self.gpus < 0:
            raise WrmilInputError(f"launch.gpus={self.gpus}: use 0 (CPU pod) or more")
        if not self.mount_path.startswith("/"):
            raise WrmilInputError(f"launch.mount_path={self.mount_path!r} must be absolute (where the PVC is mounted)")


def _resources(pod: TrainingPod) -> dict[str, Any]:
    requests: dict[str, Any] = {"cpu": pod.cpu, "memory": pod.memory}
    limits: dict[str, Any] = {"memory": pod.memory}
    if pod.gpus:  # extended resources: request == limit, whole devices
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = pod.gpus
    return {"requests": requests, "limits": limits}


def training_pod(pod: TrainingPod, command: Sequence[str], env: Mapping[str, str] | None = None,
                 name: str = "wrmil-arcface-train") -> dict[str, Any]:
    """A complete ``v1/Pod`` manifest running ``command`` (torchrun over ``pod.gpus`` ranks)."""
    container = {
        "name": "train", "image": pod.image, "command": list(command),
        "env": [{"name": k, "value": str(v)} for k, v in (env or {}).items()],
        "resources": _resources(pod),
        "volumeMounts": [{"name": "data", "mountPath": pod.mount_path}, {"name": "dshm", "mountPath": SHM}],
    }
    spec: dict[str, Any] = {
        "restartPolicy": "Never",  # a failed training fails the Dagster step; the checkpoint resumes it
        "nodeSelector": dict(pod.node_selector),
        "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}] if pod.gpus else [],
        "containers": [container],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": pod.volume_claim}},
                    {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": pod.shm_size}}],
    }
    if pod.service_account:
        spec["serviceAccountName"] = pod.service_account
    meta = {"name": name, "namespace": pod.namespace,
            "labels": {"app.kubernetes.io/name": "wrmil", "app.kubernetes.io/component": "arcface-training"}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def gpu_run_tags(pod: TrainingPod) -> dict[str, Any]:
    """The ``dagster-k8s/config`` run tag that puts a whole run's pod on ``pod``'s GPU node pool.

    For ``K8sRunLauncher`` without PipesK8sClient: the training run itself gets the GPUs and
    ``arcface_model`` trains with ``launch.mode: torchrun``. Keys in dagster-k8s' snake_case form;
    the values are those of :func:`training_pod` (same resources, node selector, tolerations, shm).
    """
    spec = training_pod(pod, ["unused"])["spec"]
    return {"dagster-k8s/config": {
        "container_config": {"resources": spec["containers"][0]["resources"],
                             "volume_mounts": [{"name": "dshm", "mount_path": SHM}]},
        "pod_spec_config": {"node_selector": spec["nodeSelector"], "tolerations": spec["tolerations"],
                            "volumes": [{"name": "dshm",
                                         "empty_dir": {"medium": "Memory", "size_limit": pod.shm_size}}]},
    }}


# The documented example (deploy/k8s/training-pod.yaml): 8 GPUs of one node of a GPU pool.
EXAMPLE = TrainingPod(image="registry.example.org/wrmil:0.1.0", gpus=8,
                      node_selector={"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"})
EXAMPLE_COMMAND = ["python", "-m", "wrmil_core.embedding.launch", "--nproc-per-node", "8",
                   "--failure-file", "/data/artifacts/arcface/<key>-world8/launch/failure.txt", "--",
                   "--words", "/data/artifacts/arcface/<key>-world8/launch/words.parquet",
                   "--splits", "/data/artifacts/arcface/<key>-world8/launch/splits.parquet",
                   "--out", "/data/artifacts/arcface/<key>-world8",
                   "--config", "/data/artifacts/arcface/<key>-world8/launch/config.json", "--pipes"]
EXAMPLE_ENV = {"WRMIL_ARTIFACT_DIR": "/data/artifacts", "WRMIL_DATA_ROOT": "/data/words"}


EXAMPLES = {"training-pod.yaml": lambda: training_pod(EXAMPLE, EXAMPLE_COMMAND, EXAMPLE_ENV),
            "gpu-run-tags.yaml": lambda: gpu_run_tags(EXAMPLE)}


def render_example(name: str) -> str:
    """A generated file of ``deploy/k8s/`` (``training-pod.yaml``, ``gpu-run-tags.yaml``) as YAML."""
    header = "# Generated by `python -m wrmil_assets.k8s` (wrmil_assets/k8s.py); do not edit by hand.\n"
    return header + yaml.safe_dump(EXAMPLES[name](), sort_keys=False)


def main(argv: list[str] | None = None) -> int:
    """Print a generated example (``--write DIR`` writes every one into DIR, e.g. deploy/k8s)."""
    p = argparse.ArgumentParser(prog="python -m wrmil_assets.k8s", description=main.__doc__)
    p.add_argument("name", nargs="?", default="training-pod.yaml", choices=sorted(EXAMPLES))
    p.add_argument("--write", metavar="DIR", help="write every example into DIR instead")
    a = p.parse_args(argv)
    if not a.write:
        sys.stdout.write(render_example(a.name))
        return 0
    for name in EXAMPLES:
        with open(f"{a.write}/{name}", "w", encoding="utf-8") as f:
            f.write(render_example(name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
