"""VMC adaptation loop and adapter files."""

import json

import pytest
import torch
from diffusers import DDPMScheduler

from eval.errors import UserError
from unet_reference import deterministic_state_dict, tiny_configs
from vmc.adapter import load_adapter, save_adapter
from vmc.models import Show1UNet3D
from vmc.trainer import TrainConfig, train_motion


def _unet(config=None):
    model = Show1UNet3D.from_config(config or tiny_configs()["keyframes"]).eval()
    model.load_state_dict(deterministic_state_dict({k: tuple(v.shape) for k, v in model.state_dict().items()}))
    return model


@pytest.fixture(scope="module")
def trained():
    unet = _unet()
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    video = torch.rand(1, 3, 4, 16, 24, generator=g) * 2 - 1
    text = torch.randn(1, 5, 96, generator=g)
    result = train_motion(unet, video, text, DDPMScheduler(beta_schedule="squaredcos_cap_v2"),
                          TrainConfig(steps=4, lr=1e-3), progress=False)
    return unet, before, result


def test_only_the_selected_parameters_change(trained):
    unet, before, result = trained
    changed = {k for k, v in unet.state_dict().items() if not torch.equal(v, before[k])}
    # 16 temporal transformers (down 3×2, mid 1, up 3×3) × 2 self-attentions × q, k, v
    assert changed == set(result["trained"]) and len(changed) == 16 * 2 * 3
    assert len(result["history"]) == 4 and all(0 <= x <= 2 for x in result["history"])


def test_adapter_round_trip_gives_identical_outputs(trained, tmp_path):
    unet, _, result = trained
    folder = save_adapter(tmp_path / "adapter", unet, result["trained"], {"base": {"id": "tiny"}, "steps": 4})
    info = json.loads((folder / "adapter.json").read_text())
    assert set(info["tensors"]) == set(result["trained"]) and info["steps"] == 4
    fresh = _unet()
    load_adapter(folder, fresh)
    x = torch.randn(1, 3, 4, 16, 24, generator=torch.Generator().manual_seed(2))
    text = torch.randn(1, 5, 96, generator=torch.Generator().manual_seed(3))
    # both as every sampler uses them: a parameter that requires grad takes other CPU kernels even under no_grad
    # (torch 2.14: last bits differ), so the comparison is of two UNets in the same state
    for model in (fresh, unet):
        model.eval().requires_grad_(False)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x, 300, text).sample, unet(x, 300, text).sample, rtol=0, atol=0)


def test_adapter_refuses_another_base(trained, tmp_path):
    unet, _, result = trained
    folder = save_adapter(tmp_path / "adapter", unet, result["trained"], {"base": {"id": "tiny"}})
    other = _unet({**tiny_configs()["keyframes"], "block_out_channels": [32, 64, 64, 64]})
    with pytest.raises(UserError, match="trained on another base UNet"):
        load_adapter(folder, other)
    (folder / "adapter.json").write_text("{broken")
    with pytest.raises(UserError, match="adapter.json: not valid JSON"):
        load_adapter(folder, unet)
    with pytest.raises(UserError, match="not an adapter"):
        load_adapter(tmp_path, unet)


def test_seeded_training_is_reproducible_and_checkpointing_changes_nothing():
    g = torch.Generator().manual_seed(0)
    video, text = torch.rand(1, 3, 4, 16, 24, generator=g) * 2 - 1, torch.randn(1, 5, 96, generator=g)
    runs = []
    for checkpointing in ("none", "none", "convs", "full"):
        unet = _unet()
        runs.append(train_motion(unet, video, text, DDPMScheduler(beta_schedule="squaredcos_cap_v2"),
                                 TrainConfig(steps=2, lr=1e-3, gradient_checkpointing=checkpointing),
                                 progress=False)["history"])
    assert runs[0] == runs[1]
    assert runs[2] == pytest.approx(runs[0], rel=1e-5)
    assert runs[3] == pytest.approx(runs[0], rel=1e-5)


def test_checkpointing_modes_give_the_same_gradients_and_hold_less():
    """One training forward/backward in float64 (dropout active, same draws): checkpointing the convolutional parts
    or everything gives the plain pass's gradients, and holds less for the backward pass, full the least."""
    from vmc.models.checkpointing import LiveTensorBytes, set_gradient_checkpointing
    from vmc.parameters import select_parameters

    g = torch.Generator().manual_seed(5)
    x, text = torch.randn(1, 3, 4, 16, 24, generator=g, dtype=torch.float64), torch.randn(1, 5, 96, generator=g)
    grads, held = {}, {}
    for mode in ("none", "convs", "full"):
        unet = _unet().double().train()
        selected = select_parameters(unet, "qkv")  # freezes every other parameter
        set_gradient_checkpointing(unet, mode)
        torch.manual_seed(11)
        with LiveTensorBytes(ignore=unet.parameters()) as memory:
            out = unet(x, torch.tensor([613]), text.double()).sample
            held[mode] = memory.live
            (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
        grads[mode] = {k: p.grad for k, p in selected.items()}
    for mode in ("convs", "full"):
        for k, grad in grads["none"].items():
            torch.testing.assert_close(grads[mode][k], grad, rtol=1e-12, atol=1e-12)
    assert held["full"] < held["convs"] < 0.8 * held["none"]
    set_gradient_checkpointing(unet, "convs")
    set_gradient_checkpointing(unet, "none")  # a UNet adapted before with checkpointing trains without it again
    assert not unet.is_gradient_checkpointing
    assert all(m.checkpoint_attention for m in unet.modules() if hasattr(m, "checkpoint_attention"))
    with pytest.raises(ValueError, match="one of none, convs, full"):
        set_gradient_checkpointing(unet, "some")


def test_train_config_checkpointing_setting():
    assert TrainConfig(gradient_checkpointing=True).gradient_checkpointing == "full"  # settings written as a flag
    assert TrainConfig(gradient_checkpointing=False).gradient_checkpointing == "none"
    with pytest.raises(ValueError, match="gradient_checkpointing 'partial': one of none, convs, full"):
        TrainConfig(gradient_checkpointing="partial")


def test_weights_stored_in_the_autocast_dtype_are_not_copied_for_the_backward_pass():
    """Autocast casts an fp32 weight to a 16-bit copy at each use, and a convolution or linear layer then holds that
    copy for the backward pass; a weight stored in the autocast dtype is used as it is. So store_weights spends
    about 2 bytes less per frozen weight on what the forward pass holds, besides halving the weights."""
    from vmc.models.checkpointing import LiveTensorBytes
    from vmc.parameters import select_parameters
    from vmc.trainer import store_weights

    g = torch.Generator().manual_seed(4)
    x, text = torch.randn(1, 3, 4, 16, 24, generator=g), torch.randn(1, 5, 96, generator=g)
    held = {}
    for low in (False, True):
        unet = _unet().bfloat16().float().train()  # weights bf16 holds exactly
        selected = select_parameters(unet, "qkv")
        store_weights(unet, selected, torch.bfloat16 if low else None)
        with LiveTensorBytes(ignore=unet.parameters()) as memory, torch.autocast("cpu", dtype=torch.bfloat16):
            out = unet(x, torch.tensor([417]), text).sample
            held[low] = memory.live
        del out
    narrowed = sum(p.numel() for p in unet.parameters() if p.dtype == torch.bfloat16)
    assert held[False] - held[True] > 1.5 * narrowed


def test_frozen_weights_stored_in_16_bits_give_the_same_numbers_and_come_back_exactly():
    """Autocast rounds frozen conv / linear weights to bf16 at each forward; storing weights loaded from an fp16
    checkpoint in fp16 must change neither the output nor the trained parameters' gradients (CPU autocast, fresh
    random inputs), and training must hand the frozen weights back unchanged."""
    from vmc.parameters import select_parameters
    from vmc.trainer import store_weights

    g = torch.Generator().manual_seed(3)
    x, text = torch.randn(1, 3, 4, 16, 24, generator=g), torch.randn(1, 5, 96, generator=g)
    t = torch.tensor([417])
    results = []
    for low in (False, True):
        unet = _unet().half().float().train()  # as loaded from an fp16 checkpoint
        selected = select_parameters(unet, "qkv")
        for m in unet.modules():  # dropout off, so both runs see the same network
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
        store_weights(unet, selected, torch.bfloat16 if low else None)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = unet(x, t, text).sample
        out.float().square().mean().backward()
        results.append((out.float(), {k: p.grad.clone() for k, p in selected.items()}, unet))
    (ref, ref_grads, fp32), (got, grads, stored) = results
    assert {p.dtype for p in stored.parameters()} == {torch.float32, torch.float16}
    assert all(p.dtype == torch.float32 for p in selected.values())
    assert sum(p.numel() for p in stored.parameters() if p.dtype == torch.float16) > 0.8 * sum(
        p.numel() for p in fp32.parameters())
    torch.testing.assert_close(got, ref, rtol=0, atol=0)
    for k in ref_grads:
        torch.testing.assert_close(grads[k], ref_grads[k], rtol=0, atol=0)

    unet = _unet().half().float()
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    result = train_motion(unet, x.clamp(-1, 1), text, DDPMScheduler(beta_schedule="squaredcos_cap_v2"),
                          TrainConfig(steps=1, lr=1e-3, mixed_precision="bf16"), progress=False)
    after = unet.state_dict()
    assert all(v.dtype == torch.float32 for v in after.values())
    assert all(torch.equal(after[k], v) for k, v in before.items() if k not in result["trained"])
