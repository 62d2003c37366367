"""MotionDirector's recipe: the debiased loss against a direct computation, the dual-path LoRA (targets, paths
switched on and off, exactly the LoRA trained), and the saved LoRA round trip through eval.run and vmc.generate."""

import copy
import json

import torch
import yaml

from conftest import run_cli, run_main
from eval.run import main as run_main_cli
from eval.rundir import RunFolder
from test_vmc_method import _fast_tiny
from unet_reference import tiny_configs
from vmc.losses import appearance_debiased_loss
from vmc.models import Show1UNet3D
from vmc.models.lora import inject_dual_lora, set_lora_path


def _unet():
    torch.manual_seed(0)
    return Show1UNet3D.from_config(tiny_configs()["keyframes"]).eval()


def _inputs(unet, frames=3):
    g = torch.Generator().manual_seed(1)
    return (torch.randn(1, unet.config.in_channels, frames, 8, 8, generator=g), torch.tensor([500]),
            torch.randn(1, 5, unet.config.encoder_hid_dim, generator=g))


def test_appearance_debiased_loss_matches_direct_computation():
    g = torch.Generator().manual_seed(3)
    pred, target = torch.randn(2, 6, 5, 4, 4, generator=g), torch.randn(2, 3, 5, 4, 4, generator=g)
    p, t = pred[:, :3].double(), target.double()
    for anchor, beta in ((0, 1.0), (3, 0.5)):
        a = (beta ** 2 + 1) ** 0.5
        total = 0.0
        for i in range(5):
            total += (((a * p[:, :, i] - beta * p[:, :, anchor]) - (a * t[:, :, i] - beta * t[:, :, anchor])) ** 2).sum()
        want = ((p - t) ** 2).mean() + total / p.numel()
        got = appearance_debiased_loss(pred, target, anchor, beta)
        assert abs(float(got) - float(want)) < 1e-5


def test_dual_lora_targets_and_paths():
    base = _unet()
    unet = copy.deepcopy(base)
    names = inject_dual_lora(unet, rank=4)
    assert names["spatial"] and names["temporal"]
    assert all("temp_attentions" not in n and ".attentions." in n for n in names["spatial"])
    assert all(".temp_attentions." in n and (".attn1." in n or ".attn2." in n or ".ff." in n) for n in names["temporal"])
    assert {n.split(".lora_")[0].rsplit(".", 1)[1] for n in names["spatial"]} == {"to_q", "to_k", "to_v", "0"}
    assert not any(p.requires_grad for p in unet.parameters())
    x, t, text = _inputs(unet)
    with torch.no_grad():
        want = base(x, t, text).sample
        torch.testing.assert_close(unet(x, t, text).sample, want)  # B = 0: unchanged at initialisation
        params = dict(unet.named_parameters())
        for n in names["spatial"] + names["temporal"]:
            params[n].normal_(0, 0.05)
        both = unet(x, t, text).sample
        set_lora_path(unet, "spatial", False)
        temporal_only = unet(x, t, text).sample
        set_lora_path(unet, "temporal", False)
        torch.testing.assert_close(unet(x, t, text).sample, want)  # both off: the base UNet again
    assert not torch.allclose(both, want) and not torch.allclose(temporal_only, both)


def test_dual_path_training_changes_exactly_the_lora(tmp_path):
    from diffusers import DDPMScheduler

    from baselines.md import train_dual_path
    from vmc.trainer import TrainConfig

    unet = _unet()
    names = inject_dual_lora(unet, rank=4)
    before = {n: p.detach().clone() for n, p in unet.named_parameters()}
    video = torch.rand(1, 3, 4, 8, 8) * 2 - 1
    text = torch.randn(1, 5, unet.config.encoder_hid_dim)
    result = train_dual_path(unet, video, text, DDPMScheduler(num_train_timesteps=1000),
                             TrainConfig(steps=3, lr=1e-2), names, progress=False)
    changed = {n for n, p in unet.named_parameters() if not torch.equal(p, before[n])}
    assert changed == set(names["spatial"]) | set(names["temporal"])
    assert result["trained"] == sorted(changed) and len(result["history"]) == 3
    assert all(len(h) == 2 for h in result["history"])

    # round trip: saved, loaded into a fresh UNet with the same LoRA layers, the outputs are identical
    from vmc.adapter import load_adapter, save_adapter

    save_adapter(tmp_path / "lora", unet, result["trained"], {"method": "md"})
    fresh = _unet()
    inject_dual_lora(fresh, rank=4)
    load_adapter(tmp_path / "lora", fresh)
    x, t, txt = _inputs(unet)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x, t, txt).sample, unet(x, t, txt).sample, rtol=0, atol=0)
        set_lora_path(unet, "spatial", False)
        set_lora_path(fresh, "spatial", False)
        torch.testing.assert_close(fresh(x, t, txt).sample, unet(x, t, txt).sample, rtol=0, atol=0)


def test_dual_path_is_a_hook_on_the_training_loop_and_trains_unclipped():
    """md with max_grad_norm null (no clipping) trains, and its steps are the loop's: without clipping and with
    a bound no gradient reaches, the same numbers."""
    from diffusers import DDPMScheduler

    from baselines.md import train_dual_path
    from vmc.trainer import TrainConfig

    runs = []
    for clip in (None, 1e9):
        unet = _unet()
        names = inject_dual_lora(unet, rank=4)
        video = torch.rand(1, 3, 4, 8, 8, generator=torch.Generator().manual_seed(2)) * 2 - 1
        text = torch.randn(1, 5, unet.config.encoder_hid_dim, generator=torch.Generator().manual_seed(3))
        result = train_dual_path(unet, video, text, DDPMScheduler(num_train_timesteps=1000),
                                 TrainConfig(steps=2, lr=1e-2, max_grad_norm=clip), names, progress=False)
        runs.append((result["history"], {n: p.detach().clone() for n, p in unet.named_parameters()}))
    assert runs[0][0] == runs[1][0] and all(torch.equal(v, runs[1][1][k]) for k, v in runs[0][1].items())


def test_md_end_to_end_and_lora_round_trip(benchmark_dir, tiny_clip, tmp_path):
    tiny = _fast_tiny(tmp_path)
    meta = json.loads((tiny / "cascade.json").read_text())
    meta["md"] = {"steps": 2, "rank": 4, "noise_prior": 0.5, "inversion_steps": 2}
    (tiny / "cascade.json").write_text(json.dumps(meta))
    cfg, ckpt = tiny_clip
    manifest = yaml.safe_load((benchmark_dir / "mini.yaml").read_text())
    manifest["cases"] = manifest["cases"][1:]
    manifest["metrics"] = {"clip_model": str(cfg), "clip_pretrained": str(ckpt)}
    (benchmark_dir / "one.yaml").write_text(yaml.safe_dump(manifest))
    out = tmp_path / "run"
    assert run_main(run_main_cli, "--methods", f"md:{tiny}", "--benchmark", benchmark_dir / "one.yaml", "--out", out,
                    "--device", "cpu")[0] == 0
    record = RunFolder(out).records()[0]
    assert record.method == "md-tiny" and record.protocol["trained_parameters"] > 0
    folder = next((out / "cache").glob("md-tiny/down/*/adapter.json")).parent
    info = json.loads((folder / "adapter.json").read_text())
    assert info["lora"] == {"paths": ["spatial", "temporal"], "inference": ["temporal"]}
    assert info["settings"] == {"rank": 4, "noise_prior": 0.5}
    assert all(".lora_" in n for n in info["tensors"]) and len(info["loss_history"]) == 2
    # the saved LoRA drives vmc.generate on its own (temporal path only, noise prior from inverted.safetensors)
    gen = tmp_path / "gen.mp4"
    run_cli("-m", "vmc.generate", "--adapter", folder, "--backbone", tiny, "--prompt", record.prompt, "--seed", "0",
            "--stages", "keyframes", "--out", gen, "--device", "cpu")
    assert gen.stat().st_size > 0
