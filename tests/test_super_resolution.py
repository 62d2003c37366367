"""SR1: window tiling, the clean first-frame condition chained from window to window, noise levels."""

import pytest
import torch
from diffusers import DDPMScheduler, DPMSolverMultistepScheduler

from unet_reference import deterministic_state_dict, tiny_configs
from vmc.configs import load_config
from vmc.models import Show1UNet3D
from vmc.pipelines.super_resolution import PixelSRSampler, upscale_frames


class Spy(torch.nn.Module):
    """Wraps a UNet and records each call's inputs."""

    def __init__(self, unet):
        super().__init__()
        self.unet, self.calls = unet, []

    @property
    def dtype(self):
        return self.unet.dtype

    @property
    def config(self):
        return self.unet.config

    def forward(self, x, t, text, class_labels=None):
        self.calls.append((x.clone(), class_labels.clone()))
        return self.unet(x, t, text, class_labels=class_labels)


@pytest.fixture(scope="module")
def sampler():
    unet = Show1UNet3D.from_config(tiny_configs()["sr1"]).eval()
    unet.load_state_dict(deterministic_state_dict({k: tuple(v.shape) for k, v in unet.state_dict().items()}))
    sched = DPMSolverMultistepScheduler.from_config(load_config("show1-base-scheduler"))
    noising = DDPMScheduler(beta_schedule="squaredcos_cap_v2")
    return PixelSRSampler(Spy(unet), sched, noising)


def test_windows_chain_their_first_frame_and_carry_the_noise_level(sampler, monkeypatch):
    outputs = []
    window = sampler.window
    monkeypatch.setattr(sampler, "window", lambda *a, **k: outputs.append(window(*a, **k)) or outputs[-1])
    g = torch.Generator().manual_seed(0)
    low = torch.randn(1, 3, 15, 8, 12, generator=g).clamp(-1, 1)
    first = torch.randn(1, 3, 32, 48, generator=g).clamp(-1, 1)
    text = torch.randn(1, 6, 96, generator=g)
    sampler.unet.calls.clear()
    out = sampler(low, lambda frame: first, text, None, scale=4, window_size=8, stride=7, num_inference_steps=2,
                  guidance_scale=1.0, noise_level=250, seed=3, progress=False)
    assert out.shape == (1, 3, 15, 32, 48)
    calls = sampler.unet.calls
    assert len(calls) == 4  # 2 windows × 2 steps
    for x, levels in calls:
        assert levels.tolist() == [250] and x.shape == (1, 6, 8, 32, 48)
    torch.testing.assert_close(calls[0][0][:, 3:, 0], first)  # window 1: the image-SR frame, clean
    # window 2 is conditioned on frame 7 as window 1 produced it; its own output then replaces that frame
    torch.testing.assert_close(calls[2][0][:, 3:, 0], outputs[0][:, :, 7])
    torch.testing.assert_close(out[:, :, 7:], outputs[1].clamp(-1, 1))
    # the rest of the condition is the bilinear upscale, noised to level 250
    noised = calls[0][0][:, 3:, 1:]
    clean = upscale_frames(low[:, :, :8], 32, 48)[:, :, 1:]
    alpha = sampler.noising_scheduler.alphas_cumprod[250].sqrt()
    residual = noised - alpha * clean
    assert 0.8 < residual.std() / (1 - alpha ** 2).sqrt() < 1.2


def test_tiling_must_cover_every_frame(sampler):
    with pytest.raises(ValueError, match="cannot be tiled"):
        sampler(torch.zeros(1, 3, 12, 8, 12), lambda f: f, torch.zeros(1, 6, 96), None, progress=False)
