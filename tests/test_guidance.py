"""Training-free guidance of the keyframe sampling (vmc/families/guidance.py) and its methods motionclone and dmt:
the energies, the feature reader leaving the UNet as it was, the sampler unchanged without guidance, and both
methods end to end through eval.run on one shapes case."""

import json
import shutil

import pytest
import torch
import yaml
from diffusers.models.attention_processor import Attention
from diffusers.utils.torch_utils import randn_tensor

from baselines.dmt import DMTGuidance, low_pass, smm_difference_loss, spatial_marginal_mean
from baselines.motionclone import MotionCloneGuidance, motion_energy
from conftest import REPO, run_main, shapes_subset
from eval.run import main as run_main_cli
from eval.rundir import RunFolder
from vmc.backbones import resolve_backbone
from vmc.models.features import UNetFeatures
from vmc.pipelines import KeyframeSampler
from vmc.backbones.show1 import Show1Cascade
from vmc.pipelines.keyframes import guided_prediction, scheduler_step_per_frame

FRAMES, SIZE = 4, (16, 16)
SHAPE = (1, 3, FRAMES, *SIZE)
TEXT = (1, 8, 64)  # T5 tokens × the shapes UNet's encoder_hid_dim
TEMPORAL = [f"up_blocks.1.temp_attentions.{i}.transformer_blocks.0.attn{k}" for i in range(2) for k in (1, 2)]
DMT_FEATURES = ("up_blocks.1.resnets.1.conv2", "up_blocks.1.temp_convs.1", "up_blocks.1.upsamplers.0")
SHAPES = Show1Cascade(resolve_backbone("shapes"), "cpu")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread, as eval.run's CPU workers compute: on a loaded 2-core CPU two threads contend and a
    small UNet's forward pass took 10× longer."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def unet():
    """The shapes world's keyframe UNet (3 levels; up_blocks.1 at half the size, 2 layers)."""
    return SHAPES.load_unet(SHAPES.backbone.base)


def _scheduler():
    return SHAPES.load_scheduler(SHAPES.backbone.base)


def _randn(seed, *shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _timesteps(steps):
    s = _scheduler()
    s.set_timesteps(steps)
    return [int(t) for t in s.timesteps]


def test_motion_energy_is_zero_at_the_reference_and_its_gradient_reaches_only_the_sample(unet):
    text = _randn(0, *TEXT)
    features = UNetFeatures(unet, attention_probs=TEMPORAL)
    with torch.no_grad():
        probs = features(_randn(1, *SHAPE), 500, text)
    h, w = SIZE[0] // 2, SIZE[1] // 2
    assert all(p.shape[0] == h * w and p.shape[-2:] == (FRAMES, FRAMES) for p in probs.values())
    torch.testing.assert_close(probs[TEMPORAL[0]].sum(-1), torch.ones(probs[TEMPORAL[0]].shape[:-1]))
    reference = {name: p.max(-1) for name, p in probs.items()}
    weights = {name: 2e4 for name in TEMPORAL}
    assert motion_energy(probs, reference, weights).item() == 0.0

    guidance = MotionCloneGuidance([reference], weights, [500], _scheduler().alphas_cumprod, 1.0, 1)
    x = _randn(2, *SHAPE)
    with torch.enable_grad():
        moved = guidance.guide(x.clone(), torch.tensor(500), 0, lambda s: features(s, 500, text))
    assert (moved - x).abs().max() > 0
    assert all(p.grad is None for p in unet.parameters())


def test_dmt_loss_matches_an_independent_float64_computation():
    gen, ref = _randn(0, 5, 7), _randn(1, 5, 7)
    expected = 0.0
    for i in range(5):  # anchors
        for j in range(5):
            a, b = (gen[j] - gen[i]).double(), (ref[j] - ref[i]).double()
            cos = 0.0 if j == i else float(a @ b / (a.norm() * b.norm()))
            expected += 1 - cos
    expected /= 25
    assert abs(smm_difference_loss(gen, ref).item() - expected) < 1e-6
    features = _randn(2, 5, 7, 3, 4)
    torch.testing.assert_close(spatial_marginal_mean(features).double(),
                               torch.stack([features[f].double().reshape(7, -1).mean(1) for f in range(5)]))


def test_low_pass_keeps_flat_fields_and_removes_fine_detail():
    flat = torch.tensor([0.5, -1.0, 2.0]).view(1, 3, 1, 1, 1).expand(1, 3, 2, 16, 16)
    torch.testing.assert_close(low_pass(flat, 4), flat)
    checker = (torch.arange(16)[:, None] + torch.arange(16)).remainder(2).float().repeat(1, 3, 2, 1, 1) * 2 - 1
    assert low_pass(checker, 4).abs().max() < 0.2


def _snapshot(unet):
    return {"state": {k: v.clone() for k, v in unet.state_dict().items()},
            "modules": [(n, id(m)) for n, m in unet.named_modules()],
            "processors": {n: m.processor for n, m in unet.named_modules() if isinstance(m, Attention)},
            "hooks": [(n, len(m._forward_hooks), len(m._forward_pre_hooks)) for n, m in unet.named_modules()],
            "flags": [(n, p.requires_grad) for n, p in unet.named_parameters()], "training": unet.training}


STEPS = 2
SAMPLING = dict(num_frames=FRAMES, height=SIZE[0], width=SIZE[1], num_inference_steps=STEPS, guidance_scale=3.0,
                progress=False)


@pytest.fixture(scope="module")
def plain(unet):
    """The keyframe sampler's output without guidance."""
    return KeyframeSampler(unet, _scheduler())(_randn(0, *TEXT), _randn(1, *TEXT),
                                               generator=torch.Generator().manual_seed(3), **SAMPLING)


def test_sampling_without_guidance_is_the_loop_it_always_was(unet, plain):
    """The loop as it was before the guidance hook, written out: bitwise the same."""
    text, negative = _randn(0, *TEXT), _randn(1, *TEXT)
    scheduler = _scheduler()
    g = torch.Generator().manual_seed(3)
    x = randn_tensor(SHAPE, generator=g) * scheduler.init_noise_sigma
    scheduler.set_timesteps(STEPS)
    with torch.no_grad():
        for t in scheduler.timesteps:
            eps = guided_prediction(unet, scheduler.scale_model_input(x, t), t, text, negative, 3.0)
            x = scheduler_step_per_frame(scheduler, eps, t, x, g)
    assert torch.equal(plain, x.clamp(-1, 1))


def _guidances(unet, text):
    """A MotionClone and a DMT guidance of the first sampling step, read from a random clip."""
    timesteps = _timesteps(STEPS)[:1]
    latents = {t: _randn(t, *SHAPE) for t in timesteps}
    attention = UNetFeatures(unet, attention_probs=TEMPORAL)
    outputs = UNetFeatures(unet, outputs=DMT_FEATURES)
    with torch.no_grad():
        mc = [{n: p.max(-1) for n, p in attention(latents[t], t, text).items()} for t in timesteps]
        dmt = [{n: spatial_marginal_mean(v) for n, v in outputs(latents[t], t, text).items()} for t in timesteps]
    return (MotionCloneGuidance(mc, {n: 2e4 for n in TEMPORAL}, timesteps, _scheduler().alphas_cumprod, 1.0, 1),
            DMTGuidance(dmt, DMT_FEATURES, timesteps, [0.007], iterations=1))


def test_guided_sampling_leaves_the_unet_as_it_was(unet, plain):
    text, negative = _randn(0, *TEXT), _randn(1, *TEXT)
    before = _snapshot(unet)
    for guidance in _guidances(unet, text):
        out = KeyframeSampler(unet, _scheduler())(text, negative, generator=torch.Generator().manual_seed(3),
                                                  guidance=guidance, **SAMPLING)
        assert (out - plain).abs().max() > 1e-4, type(guidance).__name__  # it steered
        after = _snapshot(unet)
        assert after["modules"] == before["modules"] and after["hooks"] == before["hooks"]
        assert after["flags"] == before["flags"] and after["training"] == before["training"]
        assert all(after["processors"][n] is p for n, p in before["processors"].items())
        assert all(torch.equal(after["state"][k], v) for k, v in before["state"].items())
        assert all(p.grad is None for p in unet.parameters())


def test_dmt_runs_end_to_end_on_shapes(tmp_path):
    """(motionclone's run: the held-out test below)"""
    weights = tmp_path / "shapes-fast"
    shutil.copytree(REPO / "vmc" / "shapes" / "weights", weights)
    meta = json.loads((weights / "cascade.json").read_text())
    meta["settings"].update(keyframe_steps=2, interp_steps=1, sr1_steps=1)
    meta["dmt"] = {"iterations": 2}
    (weights / "cascade.json").write_text(json.dumps(meta))
    one = shapes_subset(tmp_path / "one.yaml", ["rise"], prompts=1)
    (case,) = yaml.safe_load(one.read_text())["cases"]
    out = tmp_path / "run"
    assert run_main(run_main_cli, "--methods", f"dmt:{weights}", "--benchmark", one, "--out", out, "--device", "cpu",
                    "--metrics", "oracle", "--jobs", "1")[0] == 0
    (r,) = RunFolder(out).records()
    assert r.method == "dmt-shapes" and r.num_frames == 15 and r.size == [32, 32]
    assert r.protocol["trained_parameters"] == 0 and r.protocol["features_s"] > 0 and r.timing.generate_s > 0
    run = json.loads((out / "run.json").read_text())
    assert run["methods"]["dmt-shapes"]["guidance"]["iterations"] == 2
    cached = json.loads(next((out / "cache").glob("dmt-shapes/rise/*/reference.json")).read_text())
    assert cached["prompt"] == case["train_prompt"] and len(cached["timesteps"]) == 2


def test_motionclone_moves_a_held_out_motion_the_reference_way_more_than_t2v(tmp_path):
    """The shipped shapes weights never saw a counterclockwise circle; guided by the reference, motionclone draws
    it where the text alone does not (shipped settings, two prompts, seed 0; on the full benchmark, seeds 0–2:
    see the README's shapes section)."""
    one = shapes_subset(tmp_path / "held.yaml", ["circle_ccw"], prompts=2)
    out = tmp_path / "run"
    assert run_main(run_main_cli, "--methods", "motionclone,t2v", "--benchmark", one, "--out", out, "--device", "cpu",
                    "--metrics", "oracle", "--jobs", "1")[0] == 0
    motion = {}
    for r in RunFolder(out).records():
        motion.setdefault(r.method, []).append(r.metrics["oracle_motion"])
        if r.method == "motionclone":
            assert r.protocol["trained_parameters"] == 0 and r.protocol["features_s"] > 0
    assert len(motion["motionclone"]) == len(motion["t2v"]) == 2
    assert min(motion["motionclone"]) > max(motion["t2v"]) + 0.2, motion
    run = json.loads((out / "run.json").read_text())
    assert run["methods"]["motionclone"]["guidance"]["guided_share"] == 0.6  # the official share
    cached = json.loads(next((out / "cache").glob("motionclone/circle_ccw/*/reference.json")).read_text())
    assert cached["prompt"] == "a square is moving in a counterclockwise circle" and cached["settings"]["blocks"]
