"""The latent video backbone (ModelScope / ZeroScope layout, diffusers' UNet3DConditionModel) on a tiny random model
written by vmc.tools.make_tiny_zeroscope: loading by directory, every native method end to end through eval.run,
the vmc adapter's tensors, a seeded run reproduced, and adapters refused on the other kind of backbone."""

import dataclasses
import json

import pytest
import torch
import yaml

from conftest import run_main
from eval.errors import UserError
from eval.run import main as run_main_cli
from eval.rundir import RunFolder

METHODS = ("vmc", "vmc-eps", "tav", "md", "motion-inversion", "motionclone", "dmt", "inversion", "t2v")


@pytest.fixture(scope="module")
def tiny_zeroscope(tmp_path_factory):
    """The tiny model with few steps everywhere, so that every method runs in seconds."""
    from vmc.tools.make_tiny_zeroscope import make

    root = make(tmp_path_factory.mktemp("zeroscope") / "tiny-zeroscope")
    meta = json.loads((root / "cascade.json").read_text())
    meta["settings"].update(keyframe_steps=3)
    for name in ("vmc", "tav", "md", "motion-inversion"):
        meta[name] = {"steps": 2, "inversion_steps": 2}
    meta["dmt"] = {"iterations": 2}
    (root / "cascade.json").write_text(json.dumps(meta))
    return root


def test_loads_with_stock_diffusers_classes_and_the_profile_settings(tiny_zeroscope):
    from diffusers import DDIMScheduler, UNet3DConditionModel

    from vmc.backbones import resolve_backbone
    from vmc.backbones.latent import LatentVideoPipeline

    backbone = resolve_backbone(str(tiny_zeroscope))
    assert backbone.kind == "latent" and backbone.stages == ("video",) and backbone.settings.keyframe_steps == 3
    pipe = backbone.pipeline("cpu")
    assert isinstance(pipe, LatentVideoPipeline)
    assert type(pipe.load_unet(backbone.base)) is UNet3DConditionModel
    assert type(pipe.load_scheduler(backbone.base)) is DDIMScheduler
    assert pipe.sample_size == (8, 8)
    clip = torch.rand(1, 3, 8, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    latents = pipe.encode(clip)
    assert latents.shape == (1, 4, 8, 8, 8)
    # the encoding is the VAE's own, frame by frame, whatever the slicing
    pipe.settings = dataclasses.replace(pipe.settings, vae_frames=3)
    assert torch.equal(pipe.encode(clip), latents)
    video = pipe.run("a red circle is moving left", seed=1)["video"]
    assert video.shape == (1, 3, 8, 64, 64) and video.abs().max() <= 1
    assert torch.equal(pipe.run("a red circle is moving left", seed=1)["video"], video)


def test_the_stages_of_a_latent_backbone_and_unknown_profiles_are_said_in_one_line(tiny_zeroscope):
    from vmc.backbones import resolve_backbone

    pipe = resolve_backbone(str(tiny_zeroscope)).pipeline("cpu")
    with pytest.raises(UserError, match="one stage, video"):
        pipe.run("a circle", stages=["keyframes", "sr2"])
    with pytest.raises(UserError, match="zeroscope"):
        resolve_backbone("no-such-backbone")


def test_every_method_runs_end_to_end_and_a_seeded_run_reproduces(benchmark_dir, tiny_clip, tiny_zeroscope, tmp_path):
    cfg, ckpt = tiny_clip
    manifest = yaml.safe_load((benchmark_dir / "mini.yaml").read_text())
    manifest["cases"] = manifest["cases"][1:]  # one case, one prompt
    manifest["metrics"] = {"clip_model": str(cfg), "clip_pretrained": str(ckpt)}
    (benchmark_dir / "one.yaml").write_text(yaml.safe_dump(manifest))
    methods = ",".join(f"{m}:{tiny_zeroscope}" for m in METHODS)
    out = tmp_path / "run"
    args = ["--methods", methods, "--benchmark", benchmark_dir / "one.yaml", "--device", "cpu", "--jobs", "1"]
    assert run_main(run_main_cli, *args, "--out", out)[0] == 0
    records = RunFolder(out).records()
    assert [r.method for r in records] == [f"{m}-tiny-zeroscope" for m in METHODS]
    for r in records:
        assert r.num_frames == 8 and r.size == [64, 64] and r.metrics["text_alignment"] is not None
    run = json.loads((out / "run.json").read_text())
    assert all(run["methods"][f"{m}-tiny-zeroscope"]["backbone_kind"] == "latent" for m in METHODS)

    # the vmc adapter holds exactly the q/k/v of the UNet's temporal attentions, and says which backbone
    from diffusers import UNet3DConditionModel
    from safetensors.torch import load_file

    (adapter,) = (out / "cache").glob("vmc-tiny-zeroscope/down/*/adapter.json")
    info = json.loads(adapter.read_text())
    assert info["backbone_kind"] == "latent"
    unet = UNet3DConditionModel.from_pretrained(tiny_zeroscope, subfolder="unet")
    expected = sorted(n for n, _ in unet.named_parameters()
                      if "temp_attentions" in n and n.rsplit(".", 2)[-2] in ("to_q", "to_k", "to_v"))
    assert sorted(load_file(str(adapter.with_name("adapter.safetensors")))) == expected
    assert any(".attn2." in n for n in expected)  # both temporal self-attentions

    # vmc.generate rebuilds the adapted UNet from the adapter folder alone: the same video as eval.run's
    from vmc.generate import main as generate_main

    vmc_record = records[0]
    target = tmp_path / "generated.mp4"
    assert run_main(generate_main, "--adapter", adapter.parent, "--prompt", vmc_record.prompt, "--seed",
                    vmc_record.seed, "--out", target, "--device", "cpu", "--backbone", tiny_zeroscope)[0] == 0
    assert target.read_bytes() == RunFolder(out).video(vmc_record).read_bytes()

    # the same command in a fresh folder: byte-identical videos
    again = tmp_path / "again"
    assert run_main(run_main_cli, *args, "--methods", f"vmc:{tiny_zeroscope},dmt:{tiny_zeroscope}", "--out",
                    again)[0] == 0
    for r in RunFolder(again).records():
        assert RunFolder(again).video(r).read_bytes() == RunFolder(out).video(
            next(x for x in records if x.method == r.method)).read_bytes()


def test_an_adapter_is_refused_on_the_other_kind_of_backbone(tiny_zeroscope, tmp_path):
    from vmc.generate import adapter_method

    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter.json").write_text(json.dumps({"format": "vmc-suite adapter v1", "method": "vmc",
                                                     "backbone": "tiny"}))
    (folder / "adapter.safetensors").write_bytes(b"")
    with pytest.raises(UserError, match="Show-1 cascade.*latent video backbone"):
        adapter_method(folder, str(tiny_zeroscope), "cpu")


def test_sparse_causal_self_attention_equals_a_float64_reference():
    """Tune-A-Video's attention on a spatial transformer's self-attention: frame i's queries attend over the tokens of
    frames 0 and i−1 (frame 0 over itself twice)."""
    from diffusers.models.attention_processor import Attention

    from vmc.models.sparse_causal import SparseCausalSelfProcessor

    torch.manual_seed(0)
    attn = Attention(16, heads=2, dim_head=8).double()
    processor = SparseCausalSelfProcessor()
    processor.num_frames = 3
    attn.set_processor(processor)
    b, f, n = 2, 3, 5
    x = torch.randn(b * f, n, 16, dtype=torch.float64)
    out = attn(x)

    q, k, v = attn.to_q(x), attn.to_k(x), attn.to_v(x)
    expected = torch.empty_like(out)
    for clip in range(b):
        for i in range(f):
            row = clip * f + i
            sources = [clip * f, clip * f + max(i - 1, 0)]
            keys, values = torch.cat([k[s] for s in sources]), torch.cat([v[s] for s in sources])
            heads = []
            for h in range(2):
                sl = slice(8 * h, 8 * h + 8)
                weights = torch.softmax(q[row][:, sl] @ keys[:, sl].T / 8 ** 0.5, dim=-1)
                heads.append(weights @ values[:, sl])
            expected[row] = attn.to_out[0](torch.cat(heads, dim=-1))
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_tav_and_md_find_their_layers_in_a_modelscope_unet(tiny_zeroscope):
    from diffusers import UNet3DConditionModel

    from vmc.models.lora import inject_dual_lora
    from vmc.models.sparse_causal import SparseCausalSelfProcessor, enable_sparse_causal
    from vmc.parameters import select_parameters

    unet = UNet3DConditionModel.from_pretrained(tiny_zeroscope, subfolder="unet")
    processors = enable_sparse_causal(unet)
    modules = dict(unet.named_modules())
    changed = sorted(n for n, m in modules.items() if isinstance(getattr(m, "processor", None),
                                                                   SparseCausalSelfProcessor))
    assert len(processors) == len(changed) > 0
    assert all(n.endswith(".attn1") and ".attentions." in n and "temp_" not in n for n in changed)
    # Tune-A-Video trains the spatial queries (self and cross) and the whole temporal attention
    trained = select_parameters(unet, "tav")
    assert any(n.endswith("attn2.to_q.weight") and ".attentions." in n for n in trained)
    assert not any(".attentions." in n and n.endswith("to_k.weight") for n in trained)

    unet = UNet3DConditionModel.from_pretrained(tiny_zeroscope, subfolder="unet")
    names = inject_dual_lora(unet, rank=4)
    spatial = {n.split(".lora_")[0] for n in names["spatial"]}
    assert spatial and all(".attentions." in n and ("attn1." in n or ".ff." in n) for n in spatial)
    assert any(".ff." in n for n in spatial) and not any("attn2" in n for n in spatial)
    temporal = {n.split(".lora_")[0] for n in names["temporal"]}
    assert temporal and all("temp_attentions" in n for n in temporal)


def test_the_hub_profiles_resolve_offline_with_their_official_sizes():
    """`vmc:zeroscope` and `md:modelscope` name the hub models; nothing loads until a video is made."""
    from eval.methods import create_method

    zeroscope = create_method("vmc:zeroscope", "cpu").info()
    assert (zeroscope["backbone"], zeroscope["backbone_kind"]) == ("zeroscope", "latent")
    s = zeroscope["settings"]
    assert (s["num_frames"], s["height"], s["width"], s["keyframe_steps"], s["keyframe_guidance"]) == (24, 320, 576,
                                                                                                      50, 9.0)
    modelscope = create_method("md:modelscope", "cpu")
    assert modelscope.label == "md-modelscope" and modelscope.backbone.settings.num_frames == 16
    assert modelscope.config.train.lr == 5e-4 and modelscope.config.train.steps == 150  # MotionDirector's own


def test_gradient_checkpointing_is_refused_in_one_line_where_the_unet_has_none(tiny_zeroscope):
    """diffusers' UNet3DConditionModel does not support gradient checkpointing: say so before training."""
    from diffusers import UNet3DConditionModel

    from vmc.models.checkpointing import set_gradient_checkpointing

    unet = UNet3DConditionModel.from_pretrained(tiny_zeroscope, subfolder="unet")
    for mode in ("convs", "full"):
        with pytest.raises(ValueError, match="does not support gradient checkpointing.*use 'none'"):
            set_gradient_checkpointing(unet, mode)
    set_gradient_checkpointing(unet, "none")


def test_gradient_checkpointing_on_zeroscope_is_refused_before_any_work(tiny_zeroscope):
    from eval.methods import create_method

    method = create_method(f"vmc:{tiny_zeroscope}", "cpu")
    with pytest.raises(UserError, match="gradient_checkpointing 'full'.*UNet3DConditionModel.*use 'none'"):
        method.configure({"gradient_checkpointing": "full"})

