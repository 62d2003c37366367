"""Show1UNet3D against the official Show-1 implementation (numbers recorded in tests/data)."""

import json

import pytest
import torch
from safetensors.torch import load_file

from unet_reference import DATA, base_config, deterministic_state_dict, inputs, tiny_configs
from vmc.models import Show1UNet3D

SHAPES = json.loads((DATA / "show1_unet_shapes.json").read_text())


def _shapes(model):
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def test_state_dict_matches_the_official_show1_base_exactly():
    with torch.device("meta"):
        model = Show1UNet3D.from_config(base_config())
    ours, official = _shapes(model), SHAPES["show-1-base"]
    assert sorted(set(official) - set(ours)) == [] and sorted(set(ours) - set(official)) == []
    assert ours == official
    assert sum(torch.Size(s).numel() for s in ours.values()) == 1_726_848_390
    qkv = [k for k in ours if "temp_attentions" in k and k.endswith((".to_q.weight", ".to_k.weight", ".to_v.weight"))]
    assert len(qkv) == 132  # 22 temporal transformers × 2 self-attentions × q, k, v
    assert round(sum(torch.Size(ours[k]).numel() for k in qkv) / 1e6, 1) == 134.6


@pytest.mark.parametrize("name", ["keyframes", "sr1", "modelscope"])
def test_outputs_equal_the_official_implementation(name):
    config = tiny_configs()[name]
    model = Show1UNet3D.from_config(config).eval()
    assert _shapes(model) == SHAPES[f"tiny-{name}"]
    model.load_state_dict(deterministic_state_dict({k: tuple(v) for k, v in _shapes(model).items()}))
    ref = load_file(DATA / "show1_unet_reference.safetensors")
    x = {k.split(".input.")[1]: v for k, v in ref.items() if k.startswith(f"{name}.input.")}
    torch.testing.assert_close(x["sample"], inputs(config)["sample"])  # same inputs as the recorded run
    with torch.no_grad():
        out = model(x["sample"], x["timestep"], x["encoder_hidden_states"], class_labels=x.get("class_labels")).sample
    expected = ref[f"{name}.output"]
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("safe", [True, False])
def test_from_pretrained_loads_an_official_layout(tmp_path, safe):
    """A checkpoint as the official code writes it: unet/ subfolder, `_class_name: UNet3DConditionModel`,
    .bin or .safetensors weights."""
    config = tiny_configs()["keyframes"]
    model = Show1UNet3D.from_config(config).eval()
    model.load_state_dict(deterministic_state_dict({k: tuple(v) for k, v in _shapes(model).items()}))
    model.save_pretrained(tmp_path / "repo" / "unet", safe_serialization=safe)
    cfg_path = tmp_path / "repo" / "unet" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.update(_class_name="UNet3DConditionModel", _diffusers_version="0.19.1")
    cfg_path.write_text(json.dumps(cfg))
    loaded = Show1UNet3D.from_pretrained(tmp_path / "repo", subfolder="unet").eval()
    x = inputs(config)
    with torch.no_grad():
        a = model(x["sample"], x["timestep"], x["encoder_hidden_states"]).sample
        b = loaded(x["sample"], x["timestep"], x["encoder_hidden_states"]).sample
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_unsupported_config_is_a_clear_error():
    with pytest.raises(ValueError, match="time_embedding_type='fourier'"):
        Show1UNet3D.from_config({**tiny_configs()["keyframes"], "time_embedding_type": "fourier"})
    with pytest.raises(ValueError, match="unknown down block type 'Nope3D'"):
        Show1UNet3D.from_config({**tiny_configs()["keyframes"], "down_block_types": ["Nope3D"] * 4})


@pytest.mark.parametrize("batch", [1, 2])
def test_frame_convs_equal_the_3d_temporal_conv_in_float64_with_gradients(batch):
    from diffusers.models.resnet import TemporalConvLayer

    from vmc.models.temporal_conv import FrameConvLayer, use_frame_convs

    torch.manual_seed(batch)
    ref = TemporalConvLayer(16, 16, dropout=0.1, norm_num_groups=4).double()
    for p in ref.parameters():  # the last conv starts at zero: give every layer real weights
        torch.nn.init.normal_(p, std=0.2)
    ref_copy = TemporalConvLayer(16, 16, dropout=0.1, norm_num_groups=4).double()
    ref_copy.load_state_dict(ref.state_dict())
    fast = use_frame_convs(torch.nn.Sequential(ref_copy))[0]
    assert isinstance(fast, FrameConvLayer) and fast is not ref
    assert {k: v.shape for k, v in fast.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    x = torch.randn(batch * 5, 16, 6, 7, dtype=torch.float64)
    outs, grads = [], []
    for layer in (ref, fast):
        layer.train()
        torch.manual_seed(0)  # the same dropout masks
        xi = x.clone().requires_grad_(True)
        out = layer(xi, num_frames=5)
        (out * torch.linspace(-1, 1, out.numel(), dtype=torch.float64).view_as(out)).sum().backward()
        outs.append(out)
        grads.append([xi.grad, *(p.grad for p in layer.parameters())])
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-12, atol=1e-12)
    for g_fast, g_ref in zip(grads[1], grads[0]):
        torch.testing.assert_close(g_fast, g_ref, rtol=1e-10, atol=1e-12)


def test_short_sequence_attention_equals_the_softmax_formula_in_float64_with_gradients():
    """ShortSequenceAttnProcessor against softmax(QKᵀ/√d)V written out per head, and SDPA's gradients."""
    from diffusers.models.attention_processor import Attention, AttnProcessor2_0

    from vmc.models.short_attention import ShortSequenceAttnProcessor

    torch.manual_seed(3)
    attn = Attention(query_dim=20, heads=4, dim_head=5, bias=False).double()
    x = torch.randn(6, 8, 20, dtype=torch.float64)
    q, k, v = (layer(x).view(6, 8, 4, 5) for layer in (attn.to_q, attn.to_k, attn.to_v))
    scores = torch.einsum("nihd,njhd->nhij", q, k) / 5 ** 0.5
    expected = attn.to_out[0](torch.einsum("nhij,njhd->nihd", scores.softmax(-1), v).reshape(6, 8, 20))
    outs, grads = [], []
    for processor in (ShortSequenceAttnProcessor(), AttnProcessor2_0()):
        attn.set_processor(processor)
        attn.zero_grad()
        xi = x.clone().requires_grad_(True)
        out = attn(xi)
        (out * torch.linspace(-1, 1, out.numel(), dtype=torch.float64).view_as(out)).sum().backward()
        outs.append(out)
        grads.append([xi.grad, *(p.grad.clone() for p in attn.parameters())])
    torch.testing.assert_close(outs[0], expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(outs[1], expected, rtol=1e-12, atol=1e-12)
    for g_short, g_sdpa in zip(*grads):
        torch.testing.assert_close(g_short, g_sdpa, rtol=1e-10, atol=1e-12)


def test_set_temporal_attention_switches_every_temporal_attention_and_keeps_the_output():
    from vmc.models.short_attention import ShortSequenceAttnProcessor, set_temporal_attention

    config = tiny_configs()["keyframes"]
    model = Show1UNet3D.from_config(config).eval()
    model.load_state_dict(deterministic_state_dict({k: tuple(v) for k, v in _shapes(model).items()}))
    x = inputs(config)
    with torch.no_grad():
        sdpa = model(x["sample"], x["timestep"], x["encoder_hidden_states"]).sample
        n = set_temporal_attention(model, "short")
        short = model(x["sample"], x["timestep"], x["encoder_hidden_states"]).sample
    temporal = [m for name, m in model.named_modules() if "temp_attentions" in name and hasattr(m, "processor")]
    assert n == len(temporal) > 0 and all(isinstance(m.processor, ShortSequenceAttnProcessor) for m in temporal)
    spatial = [m for name, m in model.named_modules() if ".attentions." in name and hasattr(m, "processor")]
    assert spatial and not any(isinstance(m.processor, ShortSequenceAttnProcessor) for m in spatial)
    torch.testing.assert_close(short, sdpa, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="expected 'short' or 'sdpa'"):
        set_temporal_attention(model, "flash")
    with pytest.raises(ValueError, match="has no temporal attention"):
        set_temporal_attention(torch.nn.Linear(2, 2), "short")
    from diffusers.models.attention_processor import Attention

    residual = torch.nn.ModuleDict({"temp_attentions": Attention(query_dim=8, heads=2, dim_head=4,
                                                                 residual_connection=True)})
    with pytest.raises(ValueError, match="temp_attentions: not a plain attention"):
        set_temporal_attention(residual, "short")
    assert set_temporal_attention(residual, "sdpa") == 1
