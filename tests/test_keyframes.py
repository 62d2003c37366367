"""Keyframe stage: classifier-free guidance, per-frame scheduler steps, seeds and init_latents."""

import copy

import pytest
import torch
from diffusers import DPMSolverMultistepScheduler

from unet_reference import deterministic_state_dict, tiny_configs
from vmc.configs import load_config
from vmc.models import Show1UNet3D
from vmc.pipelines import KeyframeSampler
from vmc.pipelines.keyframes import guided_prediction, scheduler_step_per_frame


@pytest.fixture(scope="module")
def unet():
    model = Show1UNet3D.from_config(tiny_configs()["keyframes"]).eval()
    model.load_state_dict(deterministic_state_dict({k: tuple(v.shape) for k, v in model.state_dict().items()}))
    return model


def _scheduler():
    return DPMSolverMultistepScheduler.from_config(load_config("show1-base-scheduler"))


def _text(seed, n=1):
    return torch.randn(n, 6, 96, generator=torch.Generator().manual_seed(seed))


def test_shapes_range_and_seeds(unet):
    sample = KeyframeSampler(unet, _scheduler())
    kw = dict(num_frames=4, height=16, width=24, num_inference_steps=4, guidance_scale=9.0, progress=False)
    a = sample(_text(0), _text(1), generator=torch.Generator().manual_seed(3), **kw)
    b = sample(_text(0), _text(1), generator=torch.Generator().manual_seed(3), **kw)
    c = sample(_text(0), _text(1), generator=torch.Generator().manual_seed(4), **kw)
    assert a.shape == (1, 3, 4, 16, 24) and a.abs().max() <= 1
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (a - c).abs().max() > 1e-3


def test_init_latents_replace_the_noise(unet):
    sample = KeyframeSampler(unet, _scheduler())
    kw = dict(num_frames=4, height=16, width=24, num_inference_steps=3, guidance_scale=1.0, progress=False)
    init = torch.randn(1, 3, 4, 16, 24, generator=torch.Generator().manual_seed(9))
    a = sample(_text(0), init_latents=init, generator=torch.Generator().manual_seed(1), **kw)
    b = sample(_text(0), init_latents=init, generator=torch.Generator().manual_seed(2), **kw)
    torch.testing.assert_close(a, b, rtol=0, atol=0)  # the seed no longer matters
    with pytest.raises(ValueError, match="init_latents has shape"):
        sample(_text(0), init_latents=init[:, :, :2], **kw)


def test_guidance_formula(unet):
    x = torch.randn(1, 3, 2, 16, 24, generator=torch.Generator().manual_seed(5))
    text, negative = _text(0), _text(1)
    with torch.no_grad():
        cond = unet(x, 500, text).sample[:, :3].double()
        uncond = unet(x, 500, negative).sample[:, :3].double()
        eps = guided_prediction(unet, x, 500, text, negative, 7.5).double()
    torch.testing.assert_close(eps, uncond + 7.5 * (cond - uncond), rtol=1e-4, atol=1e-4)


def test_scheduler_steps_each_frame_as_its_own_sample():
    """With dynamic thresholding the quantile is per sample: stepping (B·F, C, H, W) must equal F separate
    schedulers stepping one frame each."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, 3, 8, 8, generator=g) * torch.tensor([0.5, 3.0, 8.0]).view(1, 1, 3, 1, 1)
    sched = _scheduler()
    sched.set_timesteps(5)
    singles = [copy.deepcopy(sched) for _ in range(3)]
    cur, per = x.clone(), [x[:, :, f].clone() for f in range(3)]
    for t in sched.timesteps[:3]:
        eps = torch.randn(1, 3, 3, 8, 8, generator=g)
        cur = scheduler_step_per_frame(sched, eps, t, cur)
        per = [s.step(eps[:, :, f], t, p).prev_sample for f, (s, p) in enumerate(zip(singles, per))]
    torch.testing.assert_close(cur, torch.stack(per, dim=2))
