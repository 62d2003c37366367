"""DDIM inversion: exact inverse of diffusers' DDIM sampler when ε does not depend on the sample."""

from types import SimpleNamespace

import pytest
import torch

from vmc.configs import load_config
from vmc.inversion import ddim_invert, inversion_scheduler


class TimeOnlyEps(torch.nn.Module):
    """ε(x, t) = sin(t / 97) · n for a fixed random n: DDIM inversion is then exactly invertible."""

    dtype = torch.float64

    def __init__(self, shape):
        super().__init__()
        self.n = torch.randn(shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def forward(self, x, t, text):
        return SimpleNamespace(sample=torch.cat([self.n * torch.sin(torch.tensor(float(t)) / 97)] * 2, dim=1))


@pytest.mark.parametrize("schedule", ["base", "sd15"])
def test_inversion_is_the_inverse_of_ddim_sampling(schedule):
    video = torch.rand(1, 3, 4, 6, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    unet = TimeOnlyEps(video.shape)
    sched = inversion_scheduler(schedule, load_config("show1-base-scheduler"))
    noise = ddim_invert(unet, video, torch.zeros(1, 1, 1), sched, num_steps=25, progress=False)
    assert (noise - video).abs().mean() > 0.1  # it did move
    sched.set_timesteps(25)
    x = noise
    for t in sched.timesteps:
        x = sched.step(unet(x, t, None).sample[:, :3], t, x).prev_sample
    torch.testing.assert_close(x, video, rtol=1e-5, atol=1e-5)  # diffusers keeps ᾱ in float32


def test_inversion_through_given_levels_keeps_each_and_is_undone_by_ddim_along_them():
    """timesteps=: the levels a sampler visits (here DPM-Solver's linspace ones), each kept in `keep`."""
    video = torch.rand(1, 3, 4, 6, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    unet = TimeOnlyEps(video.shape)
    sched = inversion_scheduler("base", load_config("show1-base-scheduler"))
    levels = [999, 749, 500, 250, 7]
    kept = {}
    noise = ddim_invert(unet, video, torch.zeros(1, 1, 1), sched, timesteps=levels, keep=kept, progress=False)
    assert sorted(kept) == sorted(levels) and torch.equal(kept[999], noise)
    alphas = sched.alphas_cumprod.double()
    x = noise
    for t, prev in zip(levels, [*levels[1:], None]):  # DDIM along the same levels, down to the clean video
        eps = unet(x, t, None).sample[:, :3]
        a_prev = alphas[prev] if prev is not None else sched.final_alpha_cumprod.double()
        x = a_prev.sqrt() * (x - (1 - alphas[t]).sqrt() * eps) / alphas[t].sqrt() + (1 - a_prev).sqrt() * eps
        if prev is not None:
            torch.testing.assert_close(x, kept[prev])
    torch.testing.assert_close(x, video)


def test_schedules():
    base = inversion_scheduler("base", load_config("show1-base-scheduler"))
    sd15 = inversion_scheduler("sd15", load_config("show1-base-scheduler"))
    assert base.config.beta_schedule == "squaredcos_cap_v2" and sd15.config.beta_schedule == "scaled_linear"
    sd15.set_timesteps(75)
    assert sd15.timesteps[0] == 963 and sd15.timesteps[-1] == 1  # 1000 // 75 = 13, steps_offset 1
    with pytest.raises(ValueError, match="unknown inversion schedule"):
        inversion_scheduler("linear", {})


def test_inner_bars_hide_in_parallel_workers(monkeypatch, capsys):
    from eval.errors import cli_main
    from eval.progress import ENV, inner_bar, shown

    assert shown() and not shown(False)
    monkeypatch.setenv(ENV, "0")  # what eval.run --jobs sets for its workers
    command = cli_main(lambda argv: (shown(), list(inner_bar(range(3), "hidden"))))  # a command reads it on start
    assert command() == (False, [0, 1, 2])
    assert "hidden" not in capsys.readouterr().err
    monkeypatch.delenv(ENV)
    assert command()[0] and shown()
