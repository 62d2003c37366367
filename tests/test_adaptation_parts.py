"""VMC's parameter selection and motion distillation loss."""

import numpy as np
import pytest
import torch

from unet_reference import base_config, tiny_configs
from vmc.losses import motion_distillation_loss
from vmc.models import Show1UNet3D
from vmc.parameters import select_parameters


def test_official_selection_on_the_full_base_config():
    with torch.device("meta"):
        model = Show1UNet3D.from_config(base_config())
    chosen = select_parameters(model, "qkv")
    assert len(chosen) == 132 and all(k.endswith((".to_q.weight", ".to_k.weight", ".to_v.weight")) for k in chosen)
    assert round(sum(p.numel() for p in chosen.values()) / 1e6, 1) == 134.6
    assert {n for n, p in model.named_parameters() if p.requires_grad} == set(chosen)
    qkvo = select_parameters(model, "qkvo")
    assert len(qkvo) == 132 + 2 * 44  # to_out.0 has weight and bias
    temporal = select_parameters(model, "temporal")
    assert set(qkvo) < set(temporal) and all("temp_attentions" in k for k in temporal)


def test_only_selected_parameters_change_when_training():
    torch.manual_seed(0)
    model = Show1UNet3D.from_config(tiny_configs()["keyframes"])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    chosen = select_parameters(model, "qkv")
    opt = torch.optim.AdamW(chosen.values(), lr=1e-3)
    x, text = torch.randn(1, 3, 4, 16, 24), torch.randn(1, 5, 96)
    for _ in range(2):
        loss = motion_distillation_loss(model(x, 500, text).sample, torch.randn(1, 3, 4, 16, 24))
        loss.backward()
        opt.step()
        opt.zero_grad()
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == set(chosen)


def _official_loss_float64(pred, target):
    p, t = pred.double().numpy()[:, :3], target.double().numpy()
    dp, dt = np.abs(np.diff(p, axis=2)), np.abs(np.diff(t, axis=2))
    cos = (dp * dt).sum(2) / np.maximum(np.linalg.norm(dp, axis=2) * np.linalg.norm(dt, axis=2), 1e-8)
    return 1 - cos.mean()


def test_loss_against_an_independent_float64_computation():
    g = torch.Generator().manual_seed(0)
    for shape in [(1, 3, 8, 5, 7), (2, 3, 4, 3, 3)]:
        target = torch.randn(*shape, generator=g)
        pred = torch.randn(shape[0], 6, *shape[2:], generator=g)  # learned-variance output
        assert motion_distillation_loss(pred, target).item() == pytest.approx(_official_loss_float64(pred, target),
                                                                             abs=1e-6)
        assert motion_distillation_loss(target, target).item() == pytest.approx(0, abs=1e-6)
        d = lambda v: np.diff(v.double().numpy(), axis=2)  # noqa: E731
        assert motion_distillation_loss(pred, target, "l2").item() == pytest.approx(
            ((d(pred[:, :3]) - d(target)) ** 2).mean(), rel=1e-5)
        assert motion_distillation_loss(pred, target, "eps_mse").item() == pytest.approx(
            ((pred[:, :3].double() - target.double()) ** 2).mean().item(), rel=1e-5)


def test_x0_variant_is_the_cosine_on_predicted_clean_frames():
    g = torch.Generator().manual_seed(1)
    clean, eps = torch.randn(1, 3, 6, 4, 4, generator=g), torch.randn(1, 3, 6, 4, 4, generator=g)
    a = torch.tensor([0.3])
    noisy = a.sqrt() * clean + (1 - a).sqrt() * eps
    exact = motion_distillation_loss(eps, eps, "x0_cosine", noisy=noisy, clean=clean, alphas_cumprod_t=a)
    assert exact.item() == pytest.approx(0, abs=1e-5)  # the true noise reconstructs v0 exactly
    pred = torch.randn(1, 3, 6, 4, 4, generator=g)
    x0 = (noisy - (1 - a).sqrt() * pred) / a.sqrt()
    assert motion_distillation_loss(pred, eps, "x0_cosine", noisy=noisy, clean=clean, alphas_cumprod_t=a).item() \
        == pytest.approx(_official_loss_float64(x0, clean), abs=1e-5)
    with pytest.raises(ValueError, match="unknown loss"):
        motion_distillation_loss(pred, eps, "huber")
