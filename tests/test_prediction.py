"""v-prediction backbones: the conversions against diffusers' own, and every ε consumer (the VMC trainer,
MotionDirector's dual path, DDIM inversion) giving the same numbers on an ε-model and on that model re-expressed
as a v-model."""

from types import SimpleNamespace

import pytest
import torch
from diffusers import DDPMScheduler

from test_inversion import TimeOnlyEps
from test_trainer_adapter import _unet
from vmc.configs import load_config
from vmc.inversion import ddim_invert, inversion_scheduler
from vmc.prediction import as_epsilon, training_target
from vmc.trainer import TrainConfig, train_motion

SD_BETAS = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)  # √ᾱ ≥ 0.07: well conditioned


class AsV(torch.nn.Module):
    """An ε-model read as a v-model: v = (ε̂ − √(1−ᾱ_t)·x_t) / √ᾱ_t, written out here on its own."""

    def __init__(self, eps_model, alphas_cumprod):
        super().__init__()
        self.inner, self.alphas = eps_model, alphas_cumprod

    @property
    def dtype(self):
        return self.inner.dtype

    def forward(self, x, t, text, **kwargs):
        eps = self.inner(x, t, text, **kwargs).sample[:, :x.shape[1]]
        a = self.alphas.to(x.dtype)[torch.as_tensor(t).reshape(-1)].reshape(-1, 1, 1, 1, 1)
        return SimpleNamespace(sample=(eps - (1 - a).sqrt() * x) / a.sqrt())


def test_conversions_match_diffusers():
    g = torch.Generator().manual_seed(3)
    clean = torch.rand(4, 3, 5, 6, 7, generator=g, dtype=torch.float64) * 2 - 1
    noise = torch.randn(clean.shape, generator=g, dtype=torch.float64)
    t = torch.randint(0, 1000, (4,), generator=g)
    sched = DDPMScheduler(beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction")
    a = sched.alphas_cumprod[t].double()
    noisy, v = sched.add_noise(clean, noise, t), sched.get_velocity(clean, noise, t)
    torch.testing.assert_close(training_target(clean, noise, a, "v_prediction"), v)
    learned_variance = torch.cat([v, torch.randn(v.shape, generator=g, dtype=torch.float64)], 1)
    torch.testing.assert_close(as_epsilon(learned_variance, noisy, a, "v_prediction"), noise)
    assert as_epsilon(learned_variance, noisy, a, "epsilon") is not learned_variance  # cut to 3 channels
    assert training_target(clean, noise, a, "epsilon") is noise
    with pytest.raises(ValueError, match="unsupported prediction_type 'sample'"):
        as_epsilon(v, noisy, a, "sample")


@pytest.mark.parametrize("loss", ["cosine", "x0_cosine", "eps_mse"])
def test_trainer_reads_a_v_model_as_the_same_eps_model(loss):
    g = torch.Generator().manual_seed(0)
    video = torch.rand(1, 3, 4, 16, 24, generator=g) * 2 - 1
    text = torch.randn(1, 5, 96, generator=g)
    config = TrainConfig(steps=3, lr=1e-3, loss=loss)
    eps_model, v_inner = _unet(), _unet()
    v_sched = DDPMScheduler(**SD_BETAS, prediction_type="v_prediction")
    ref = train_motion(eps_model, video, text, DDPMScheduler(**SD_BETAS), config, progress=False)
    got = train_motion(AsV(v_inner, v_sched.alphas_cumprod), video, text, v_sched, config, progress=False)
    torch.testing.assert_close(got["history"], ref["history"], rtol=1e-4, atol=1e-5)
    assert got["trained"] == [f"inner.{n}" for n in ref["trained"]]
    trained = dict(v_inner.named_parameters())
    for name, p in eps_model.named_parameters():
        torch.testing.assert_close(trained[name], p, rtol=1e-3, atol=1e-4)  # Adam: ~lr·sign(grad)


def test_md_dual_path_reads_a_v_model_as_the_same_eps_model():
    from baselines.md import train_dual_path
    from vmc.models.lora import inject_dual_lora

    g = torch.Generator().manual_seed(1)
    video = torch.rand(1, 3, 4, 16, 24, generator=g) * 2 - 1
    text = torch.randn(1, 5, 96, generator=g)
    config = TrainConfig(steps=2, lr=1e-3)
    runs = []
    for kind in ("epsilon", "v_prediction"):
        unet = _unet()
        names = inject_dual_lora(unet, rank=4)
        sched = DDPMScheduler(**SD_BETAS, prediction_type=kind)
        if kind == "v_prediction":
            unet, names = AsV(unet, sched.alphas_cumprod), {k: [f"inner.{n}" for n in v] for k, v in names.items()}
        runs.append(train_dual_path(unet, video, text, sched, config, names, progress=False)["history"])
    torch.testing.assert_close(runs[1], runs[0], rtol=1e-3, atol=1e-4)  # step 2 follows an Adam step


def test_inversion_of_a_v_model_equals_that_of_the_eps_model():
    video = torch.rand(1, 3, 4, 6, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    eps_model, base = TimeOnlyEps(video.shape), load_config("show1-base-scheduler")
    v_sched = inversion_scheduler("base", {**base, "prediction_type": "v_prediction"})
    assert v_sched.config.prediction_type == "v_prediction"
    ref = ddim_invert(eps_model, video, torch.zeros(1, 1, 1), inversion_scheduler("base", base), 25, progress=False)
    got = ddim_invert(AsV(eps_model, v_sched.alphas_cumprod.double()), video, torch.zeros(1, 1, 1), v_sched, 25,
                      progress=False)
    torch.testing.assert_close(got, ref)
    with pytest.raises(ValueError, match="ε-prediction backbone"):
        inversion_scheduler("sd15", {**base, "prediction_type": "v_prediction"})
