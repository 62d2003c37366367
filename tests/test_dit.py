"""The video diffusion transformer kind (Wan 2.1 and CogVideoX layouts, vmc.backbones.dit) on tiny random models
saved by stock diffusers (vmc.tools.make_tiny_dit): loading by folder, the parametrisation against the stock
schedulers' own formulas, inversion then sampling, every method end to end through eval.run, the vmc adapter's
tensors, vmc.generate reproducing eval.run, and the refusals."""

import json

import pytest
import torch
import yaml

from conftest import run_main
from eval.errors import UserError
from eval.run import main as run_main_cli
from eval.rundir import RunFolder

LAYOUTS = ("wan", "cogvideox")
METHODS = ("vmc", "vmc-eps", "md", "dmt", "inversion", "t2v")


@pytest.fixture(scope="module", params=LAYOUTS)
def tiny_dit(request, tmp_path_factory):
    """A tiny model of each layout with few steps everywhere."""
    from vmc.tools.make_tiny_dit import make

    root = make(tmp_path_factory.mktemp("dit") / f"tiny-{request.param}", request.param)
    meta = json.loads((root / "cascade.json").read_text())
    meta["settings"].update(keyframe_steps=4)
    for name in ("vmc", "md"):
        meta[name] = {"steps": 2, "inversion_steps": 4}
    meta["dmt"] = {"iterations": 2}
    (root / "cascade.json").write_text(json.dumps(meta))
    return root


def test_a_folder_loads_by_its_model_index_with_the_stock_classes(tiny_dit):
    from diffusers import CogVideoXTransformer3DModel, WanTransformer3DModel

    from vmc.backbones import resolve_backbone
    from vmc.backbones.dit import DiTPipeline

    backbone = resolve_backbone(str(tiny_dit))
    layout = backbone.layout
    assert backbone.kind == "dit" and layout == tiny_dit.name.split("-")[1] and backbone.stages == ("video",)
    assert backbone.adaptation["vmc"] == {"rule": "self_qkv", "steps": 2, "inversion_steps": 4}
    pipe = backbone.pipeline("cpu")
    assert isinstance(pipe, DiTPipeline) and pipe.sample_size == (4, 4) and pipe.latent_frames == 3
    unet = pipe.load_unet(backbone.base)
    assert type(unet.transformer) is (WanTransformer3DModel if layout == "wan" else CogVideoXTransformer3DModel)
    clip = torch.rand(1, 3, 9, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert pipe.encode(clip).shape == (1, 16, 3, 4, 4)  # 9 = 1 + 4·2 frames → 3 latent frames
    text = pipe.text_embeddings(["a red circle is moving left"])[0]
    assert text.shape == (1, 16, 32)
    if layout == "wan":  # WanPipeline zeroes the padding: 6 words and </s>
        assert text[0, 7:].abs().max() == 0 and text[0, :7].abs().min() > 0
    # the stock pipeline, loaded from the same folder, encodes the prompt the same way
    from diffusers import CogVideoXPipeline, WanPipeline

    stock = (WanPipeline if layout == "wan" else CogVideoXPipeline).from_pretrained(tiny_dit)
    expected = stock.encode_prompt("a red circle is moving left", do_classifier_free_guidance=False,
                                   max_sequence_length=16, device="cpu")[0]
    torch.testing.assert_close(text, expected.detach())  # float32 tolerances: the same computation, other kernels


def test_settings_refuse_a_frame_count_the_vae_cannot_take(tiny_dit, tmp_path):
    import shutil

    from vmc.backbones import resolve_backbone

    folder = shutil.copytree(tiny_dit, tmp_path / "eight")
    meta = json.loads((folder / "cascade.json").read_text())
    meta["settings"]["num_frames"] = 8
    (folder / "cascade.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="1 \\+ 4k frames"):
        resolve_backbone(str(folder))


def test_wan_denoiser_is_the_flow_model_in_ddpm_coordinates_and_ddim_is_its_euler_step(tmp_path):
    """On fresh random inputs: the wrapper's v against a float64 computation from the transformer's velocity, and
    one DDIM step of the wrapped model against the flow ODE's Euler step x_σ' = x_σ + (σ' − σ)·v̂."""
    from vmc.backbones import resolve_backbone
    from vmc.tools.make_tiny_dit import make

    pipe = resolve_backbone(str(make(tmp_path / "wan", "wan"))).pipeline("cpu")
    unet = pipe.load_unet(pipe.backbone.base).double()
    sigmas = unet.sigmas
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 16, 3, 4, 4, generator=g, dtype=torch.float64)
    text = torch.randn(1, 16, 32, generator=g, dtype=torch.float64)
    scheduler = pipe.load_scheduler()
    scheduler.set_timesteps(5)
    t, prev = int(scheduler.timesteps[1]), int(scheduler.timesteps[2])
    s, s_prev = sigmas[t].item(), sigmas[prev].item()
    n, n_prev = ((1 - s) ** 2 + s ** 2) ** 0.5, ((1 - s_prev) ** 2 + s_prev ** 2) ** 0.5
    with torch.no_grad():
        velocity = unet.transformer(x * n, torch.tensor([s * 1000]), text).sample
        v = unet(x, t, text).sample
    eps, x0 = x * n + (1 - s) * velocity, x * n - s * velocity
    torch.testing.assert_close(v, ((1 - s) * eps - s * x0) / n, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(scheduler.alphas_cumprod[t].double(), torch.tensor((1 - s) ** 2 / n ** 2,
                                                                                 dtype=torch.float64), rtol=1e-5, atol=1e-7)
    step = scheduler.step(v, t, x).prev_sample
    euler = (x * n + (s_prev - s) * velocity) / n_prev
    torch.testing.assert_close(step, euler, rtol=1e-4, atol=1e-4)  # the table's ᾱ is float32 in the scheduler


def test_cogvideox_sampling_step_is_its_ddim_schedulers(tmp_path):
    from diffusers import CogVideoXDDIMScheduler

    from vmc.backbones import resolve_backbone
    from vmc.tools.make_tiny_dit import COGVIDEOX_SCHEDULER, make

    pipe = resolve_backbone(str(make(tmp_path / "cog", "cogvideox"))).pipeline("cpu")
    ours, stock = pipe.load_scheduler(), CogVideoXDDIMScheduler(**COGVIDEOX_SCHEDULER)
    ours.set_timesteps(10)
    stock.set_timesteps(10)
    assert torch.equal(ours.timesteps, stock.timesteps)
    torch.testing.assert_close(ours.alphas_cumprod.double(), stock.alphas_cumprod.double(), rtol=1e-4, atol=1e-7)
    g = torch.Generator().manual_seed(4)
    x, v = torch.randn(2, 16, 4, 4, generator=g), torch.randn(2, 16, 4, 4, generator=g)
    for t in ours.timesteps[:3]:
        torch.testing.assert_close(ours.step(v, t, x).prev_sample, stock.step(v, t, x).prev_sample,
                                   rtol=1e-4, atol=1e-5)


def test_inversion_then_sampling_gives_back_the_reference_latents(tiny_dit):
    """DDIM inversion of the encoded clip (empty prompt, no guidance), then sampling from that noise through the same
    levels. DDIM inversion is first order (each step uses the prediction at the next level), so on a random model,
    whose prediction varies fast with the level, the error is the discretisation's: it must shrink about 4× from 8 to
    32 steps, to under 25% of the latents' spread (relative RMS; measured: Wan 0.36 / 0.078 / 0.021 at 10 / 50 /
    200 steps, CogVideoX 0.63 / 0.16 / 0.045)."""
    from vmc.backbones import resolve_backbone
    from vmc.inversion import ddim_invert
    from vmc.pipelines.keyframes import KeyframeSampler

    pipe = resolve_backbone(str(tiny_dit)).pipeline("cpu")
    unet = pipe.load_unet(pipe.backbone.base)
    clip = torch.rand(1, 3, 9, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    latents = pipe.encode(clip)
    empty = pipe.text_embeddings([""])[0]
    errors = []
    for steps in (8, 32):
        noise = ddim_invert(unet, latents, empty, pipe.inversion_scheduler("base", {}), steps, progress=False)
        back = KeyframeSampler(unet, pipe.load_scheduler(), pixels=False)(
            empty, None, 3, 4, 4, steps, 1.0, init_latents=noise, progress=False)
        errors.append(float(((back - latents).pow(2).mean() / latents.var()).sqrt()))
    assert errors[1] < errors[0] / 3 and errors[1] < 0.25, errors


def test_every_method_runs_end_to_end_and_vmc_generate_reproduces_it(benchmark_dir, tiny_clip, tiny_dit, tmp_path):
    cfg, ckpt = tiny_clip
    manifest = yaml.safe_load((benchmark_dir / "mini.yaml").read_text())
    manifest["cases"] = manifest["cases"][1:]  # one case, one prompt
    manifest["metrics"] = {"clip_model": str(cfg), "clip_pretrained": str(ckpt)}
    (benchmark_dir / "one.yaml").write_text(yaml.safe_dump(manifest))
    methods = ",".join(f"{m}:{tiny_dit}" for m in METHODS)
    out = tmp_path / "run"
    args = ["--methods", methods, "--benchmark", benchmark_dir / "one.yaml", "--device", "cpu", "--jobs", "1"]
    assert run_main(run_main_cli, *args, "--out", out)[0] == 0
    records = RunFolder(out).records()
    assert [r.method for r in records] == [f"{m}-{tiny_dit.name}" for m in METHODS]
    for r in records:
        assert r.num_frames == 9 and r.size == [32, 32] and r.metrics["text_alignment"] is not None
    run = json.loads((out / "run.json").read_text())
    layout = tiny_dit.name.split("-")[1]
    assert all(run["methods"][f"{m}-{tiny_dit.name}"]["backbone_kind"] == "dit" for m in METHODS)
    assert all(run["methods"][f"{m}-{tiny_dit.name}"]["backbone_layout"] == layout for m in METHODS)

    # the vmc adapter holds exactly the q/k/v of the blocks' self-attention, and says which backbone
    from safetensors.torch import load_file

    from vmc.backbones import resolve_backbone

    (adapter,) = (out / "cache").glob(f"vmc-{tiny_dit.name}/down/*/adapter.json")
    info = json.loads(adapter.read_text())
    assert (info["backbone_kind"], info["backbone_layout"], info["rule"]) == ("dit", layout, "self_qkv")
    pipe = resolve_backbone(str(tiny_dit)).pipeline("cpu")
    names = [n for n, _ in pipe.load_unet(pipe.backbone.base).named_parameters()]
    blocks = "blocks" if layout == "wan" else "transformer_blocks"
    expected = sorted(n for n in names if n.startswith(f"transformer.{blocks}.")
                      and n.split(".")[3:5] in (["attn1", "to_q"], ["attn1", "to_k"], ["attn1", "to_v"]))
    assert len(expected) == 2 * 3 * 2  # 2 blocks, q/k/v, weight and bias
    assert sorted(load_file(str(adapter.with_name("adapter.safetensors")))) == expected

    # vmc.generate rebuilds the adapted transformer from the adapter folder alone: the same video as eval.run's
    from vmc.generate import main as generate_main

    vmc_record = records[0]
    target = tmp_path / "generated.mp4"
    assert run_main(generate_main, "--adapter", adapter.parent, "--prompt", vmc_record.prompt, "--seed",
                    vmc_record.seed, "--out", target, "--device", "cpu", "--backbone", tiny_dit)[0] == 0
    assert target.read_bytes() == RunFolder(out).video(vmc_record).read_bytes()


@pytest.mark.parametrize("method", ["tav", "motionclone", "motion-inversion"])
def test_methods_without_a_port_are_refused_in_one_line(method, tiny_dit, capsys):
    code, _, err = run_main(run_main_cli, "--methods", f"{method}:{tiny_dit}", "--benchmark", "shapes-dev",
                            "--out", tiny_dit.parent / "refused", capsys=capsys)
    assert code != 0 and len(err.strip().splitlines()) == 1 and "video diffusion transformer" in err, err
    assert not (tiny_dit.parent / "refused").exists()


def test_an_adapter_is_refused_on_another_kind_or_layout(tiny_dit, tmp_path):
    from vmc.generate import adapter_method

    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter.safetensors").write_bytes(b"")
    for made_on, message in (({"backbone": "tiny"}, "Show-1 cascade.*video diffusion transformer"),
                             ({"backbone": "x", "backbone_kind": "dit", "backbone_layout": "other"},
                              "other-layout")):
        (folder / "adapter.json").write_text(json.dumps({"format": "vmc-suite adapter v1", "method": "vmc",
                                                         **made_on}))
        with pytest.raises(UserError, match=message):
            adapter_method(folder, str(tiny_dit), "cpu")


def test_the_hub_profiles_resolve_offline_with_their_published_defaults():
    from eval.methods import create_method

    wan = create_method("vmc:wan2.1-1.3b", "cpu").info()
    assert (wan["backbone"], wan["backbone_kind"], wan["backbone_layout"]) == ("wan2.1-1.3b", "dit", "wan")
    s = wan["settings"]
    assert (s["num_frames"], s["height"], s["width"], s["keyframe_steps"], s["keyframe_guidance"], s["fps"],
            s["text_length"]) == (81, 480, 832, 50, 5.0, 16.0, 512)
    assert wan["train"]["rule"] == "self_qkv"
    cog = create_method("dmt:cogvideox-2b", "cpu")
    s = cog.backbone.settings
    assert (s.num_frames, s.height, s.width, s.keyframe_guidance, s.text_length) == (49, 480, 720, 6.0, 226)
    assert cog.settings["features"] == ["transformer.transformer_blocks.15"]


def test_md_and_dmt_find_their_layers_in_a_transformer(tiny_dit):
    """md's temporal LoRA on the blocks' self-attention, its spatial LoRA on the cross-attention and feed-forward;
    dmt's spatial marginal mean of a block's video tokens is each latent frame's token mean."""
    from baselines.dmt import spatial_marginal_mean
    from vmc.backbones import resolve_backbone
    from vmc.models.lora import inject_dual_lora

    pipe = resolve_backbone(str(tiny_dit)).pipeline("cpu")
    names = inject_dual_lora(pipe.load_unet(pipe.backbone.base), rank=2)
    temporal = {n.split(".lora_")[0] for n in names["temporal"]}
    spatial = {n.split(".lora_")[0] for n in names["spatial"]}
    assert len(temporal) == 2 * 4 and all(".attn1." in n for n in temporal)  # q, k, v, out of 2 blocks
    assert spatial and not any(".attn1." in n for n in spatial)
    assert any(".attn2." in n for n in spatial) == (tiny_dit.name == "tiny-wan")  # CogVideoX has no attn2

    tokens = torch.randn(1, 3 * 4 * 4, 8, generator=torch.Generator().manual_seed(5))
    expected = torch.stack([tokens[0, 16 * f:16 * (f + 1)].double().mean(0) for f in range(3)])  # (f, h, w) order
    torch.testing.assert_close(spatial_marginal_mean(tokens, 3).double(), expected)
    torch.testing.assert_close(spatial_marginal_mean((tokens, torch.zeros(1, 2, 8)), 3).double(), expected)
