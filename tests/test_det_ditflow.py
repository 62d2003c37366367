"""DeT (`det`) and DiTFlow (`ditflow`) on the tiny Wan and CogVideoX models: end to end through eval.run, DeT's
adapter holding exactly its temporal kernels and reloaded by vmc.generate, the formulas (the kernel, the tracking
loss, the attention motion flow and its loss) against independent loops, and the one-line refusal on a UNet."""

import json
import math

import pytest
import torch
import yaml

from conftest import run_main
from eval.run import main as run_main_cli
from eval.rundir import RunFolder

LAYOUTS = ("wan", "cogvideox")


@pytest.fixture(scope="module", params=LAYOUTS)
def tiny_dit(request, tmp_path_factory):
    from vmc.tools.make_tiny_dit import make

    root = make(tmp_path_factory.mktemp("dit") / f"tiny-{request.param}", request.param)
    meta = json.loads((root / "cascade.json").read_text())
    meta["settings"].update(keyframe_steps=4)
    meta["det"] = {"steps": 2, "rank": 8, "tracking_max_t": 1000}
    meta["ditflow"] = {"iterations": 2, "guided_share": 0.5}
    (root / "cascade.json").write_text(json.dumps(meta))
    return root


def test_det_and_ditflow_run_end_to_end_and_det_adapter_is_its_kernels(benchmark_dir, tiny_clip, tiny_dit, tmp_path):
    cfg, ckpt = tiny_clip
    manifest = yaml.safe_load((benchmark_dir / "mini.yaml").read_text())
    manifest["cases"] = manifest["cases"][:1]
    manifest["cases"][0]["target_prompts"] = manifest["cases"][0]["target_prompts"][:1]
    manifest["metrics"] = {"clip_model": str(cfg), "clip_pretrained": str(ckpt)}
    (benchmark_dir / "one.yaml").write_text(yaml.safe_dump(manifest))
    out = tmp_path / "run"
    methods = f"det:{tiny_dit},ditflow:{tiny_dit}"
    assert run_main(run_main_cli, "--methods", methods, "--benchmark", benchmark_dir / "one.yaml", "--device", "cpu",
                    "--jobs", "1", "--out", out)[0] == 0
    records = RunFolder(out).records()
    assert [r.method for r in records] == [f"det-{tiny_dit.name}", f"ditflow-{tiny_dit.name}"]
    for r in records:
        assert r.num_frames == 9 and r.size == [32, 32] and r.metrics["text_alignment"] is not None
    run = json.loads((out / "run.json").read_text())
    assert run["methods"][f"ditflow-{tiny_dit.name}"]["guidance"]["block"] == 1  # the middle of 2 blocks

    # the adapter holds exactly the temporal kernels: conv1 and conv2 of every block's attn1
    from safetensors.torch import load_file

    (adapter,) = (out / "cache").glob(f"det-{tiny_dit.name}/right/*/adapter.json")
    info = json.loads(adapter.read_text())
    blocks = "blocks" if tiny_dit.name == "tiny-wan" else "transformer_blocks"
    expected = sorted(f"transformer.{blocks}.{b}.attn1.temporal_kernel.conv{i}.weight" for b in (0, 1) for i in (1, 2))
    tensors = load_file(str(adapter.with_name("adapter.safetensors")))
    assert sorted(tensors) == expected
    assert info["protocol"]["trained_parameters"] == sum(t.numel() for t in tensors.values())
    assert info["train"]["lr"] == 1e-5 and info["train"]["betas"] == [0.9, 0.95]
    assert info["settings"]["rank"] == 8 and all(tensors[n].shape[0 if n.endswith("conv1.weight") else 1] == 8
                                                 for n in expected)
    assert info["det"]["tracks"] > 0 and len(info["loss_history"]) == 2
    assert any(tensors[n].abs().max() > 0 for n in expected if n.endswith("conv2.weight"))  # trained off zero

    # vmc.generate rebuilds the adapted transformer from the adapter folder alone: the same video
    from vmc.generate import main as generate_main

    target = tmp_path / "generated.mp4"
    assert run_main(generate_main, "--adapter", adapter.parent, "--prompt", records[0].prompt, "--seed",
                    records[0].seed, "--out", target, "--device", "cpu", "--backbone", tiny_dit)[0] == 0
    assert target.read_bytes() == RunFolder(out).video(records[0]).read_bytes()


@pytest.mark.parametrize("method", ["det", "ditflow"])
def test_refused_on_a_unet_in_one_line(method, tmp_path, capsys):
    code, _, err = run_main(run_main_cli, "--methods", method, "--benchmark", "shapes-dev", "--out",
                            tmp_path / "refused", capsys=capsys)
    assert code != 0 and len(err.strip().splitlines()) == 1 and "DiT-native" in err, err
    assert not (tmp_path / "refused").exists()


def test_temporal_kernel_is_a_depthwise_in_time_conv_per_position_added_to_the_attention():
    from baselines.det import TemporalKernel

    torch.manual_seed(0)
    kernel = TemporalKernel(6, 4, frames=3)
    assert kernel.conv2.weight.abs().max() == 0 and kernel.conv1.bias is None
    torch.nn.init.normal_(kernel.conv2.weight)
    tokens = torch.randn(2, 3 * 5, 6, dtype=torch.float64)
    kernel.double()
    w1, w2 = kernel.conv1.weight, kernel.conv2.weight  # (r, C, 3), (C, r, 3)
    expected = torch.zeros_like(tokens)
    for b in range(2):
        for p in range(5):
            x = torch.stack([tokens[b, f * 5 + p] for f in range(3)])  # (F, C) along time at position p
            pad = torch.cat([torch.zeros(1, 6, dtype=x.dtype), x, torch.zeros(1, 6, dtype=x.dtype)])
            hidden = torch.stack([sum(w1[:, :, i] @ pad[f + i] for i in range(3)) for f in range(3)])
            hidden = torch.nn.functional.gelu(hidden)
            hpad = torch.cat([torch.zeros(1, 4, dtype=x.dtype), hidden, torch.zeros(1, 4, dtype=x.dtype)])
            for f in range(3):
                expected[b, f * 5 + p] = sum(w2[:, :, i] @ hpad[f + i] for i in range(3))
    torch.testing.assert_close(kernel(tokens), expected)


def test_denoising_loss_is_the_official_x0_form():
    from baselines.det import denoising_loss

    g = torch.Generator().manual_seed(3)
    clean, noise, v = (torch.randn(1, 4, 3, 2, 2, generator=g, dtype=torch.float64) for _ in range(3))
    for alpha in (0.999, 0.5, 0.01):
        a = torch.tensor(alpha, dtype=torch.float64)
        noisy = a.sqrt() * clean + (1 - a).sqrt() * noise
        x0 = a.sqrt() * noisy - (1 - a).sqrt() * v
        torch.testing.assert_close(denoising_loss(v, noise, clean, a), ((x0 - clean) ** 2 / (1 - a)).mean())


def test_tracking_loss_against_a_loop():
    from baselines.det import tracking_loss

    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(1, 4, 3, 5, 6, generator=g, dtype=torch.float64)
    positions = torch.stack([torch.randint(0, 5, (7, 3), generator=g), torch.randint(0, 6, (7, 3), generator=g)], -1)
    visible = (torch.rand(7, 3, generator=g) > 0.3).double()
    total = 0.0
    for n in range(7):
        for t in range(1, 3):
            (y, x), (y0, x0_) = positions[n, t].tolist(), positions[n, t - 1].tolist()
            total += float(visible[n, t] * ((x0[0, :, t, y, x] - x0[0, :, t - 1, y0, x0_]) ** 2).sum())
    assert math.isclose(float(tracking_loss(x0, positions, visible)), total / (4 * 7 * 2), rel_tol=1e-12)


def test_attention_motion_flow_against_the_official_per_frame_pair_form():
    """Logits averaged over heads, a softmax over each key frame's tokens at temperature τ, displacement = expected
    (or argmax) key position minus query position, (dx, dy) on a grid 3 wide; the loss only where the reference
    moves."""
    from baselines.ditflow import amf_loss, attention_motion_flow

    g = torch.Generator().manual_seed(2)
    frames, h, w, heads, d = 2, 2, 3, 2, 4
    q = torch.randn(heads, frames * h * w, d, generator=g, dtype=torch.float64)
    k = torch.randn(heads, frames * h * w, d, generator=g, dtype=torch.float64)
    soft, hard = (attention_motion_flow(q, k, frames, w, 2.0, argmax=a) for a in (False, True))
    assert soft.shape == hard.shape == (frames * frames, h * w, 2)
    xy = [(p % w, p // w) for p in range(h * w)]
    for i in range(frames):
        for j in range(frames):
            for a in range(h * w):
                logits = [sum(float(q[hd, i * h * w + a] @ k[hd, j * h * w + b]) for hd in range(heads)) / heads
                          / math.sqrt(d) for b in range(h * w)]
                z = [math.exp(2.0 * v) for v in logits]
                probs = [v / sum(z) for v in z]
                for c in range(2):
                    expected = sum(p * (xy[b][c] - xy[a][c]) for b, p in enumerate(probs))
                    assert math.isclose(float(soft[i * frames + j, a, c]), expected, abs_tol=1e-5)  # fp32
                    best = max(range(h * w), key=lambda b: logits[b])
                    assert float(hard[i * frames + j, a, c]) == xy[best][c] - xy[a][c]
    reference = hard.clone()
    reference[0] = 0  # a still pair: left out of the loss
    moving = reference.norm(dim=-1) > 0
    expected = ((soft - reference) ** 2).sum(-1)[moving].sum() / (2 * moving.sum())
    torch.testing.assert_close(amf_loss(soft, reference), expected.float())


def test_ditflow_reads_the_queries_and_keys_wan_attends_with(tmp_path):
    """On the tiny Wan: softmax(QKᵀ/√d)·V from BlockQK's queries and keys (after QK-norm and rotary) and the block's
    own value projection, through to_out, is the output of the block's attn1."""
    from baselines.ditflow import BlockQK
    from vmc.backbones import resolve_backbone
    from vmc.models.features import UNetFeatures
    from vmc.tools.make_tiny_dit import make

    pipe = resolve_backbone(str(make(tmp_path / "wan", "wan"))).pipeline("cpu")
    unet = pipe.load_unet(pipe.backbone.base).double()
    qk = BlockQK(unet, 1, 3, (4, 4))
    attn = "transformer.blocks.1.attn1"
    g = torch.Generator().manual_seed(6)
    x, text = torch.randn(1, 16, 3, 4, 4, generator=g, dtype=torch.float64), torch.randn(1, 16, 32, generator=g,
                                                                                        dtype=torch.float64)
    with torch.no_grad():
        features = UNetFeatures(unet, outputs=(*qk.names, f"{attn}.to_v", attn))(x, 500, text)
        q, k = qk(features)
        v = features[f"{attn}.to_v"][0].unflatten(-1, (qk.heads, -1)).transpose(0, 1)
        out = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), -1) @ v
        out = dict(unet.named_modules())[f"{attn}.to_out"][0](out.transpose(0, 1).flatten(1))
    torch.testing.assert_close(out, features[attn][0])


def test_search_spaces_centre_on_the_official_values(tiny_dit):
    from eval.methods import create_method

    det = create_method(f"det:{tiny_dit}", device="cpu")
    space = det.search_space()
    assert set(space) == {"steps", "lr", "rank", "tracking_weight"}
    assert (space["steps"].centre, space["lr"].centre, space["rank"].centre, space["tracking_weight"].centre) == (
        500, pytest.approx(1e-5), 128, 0.1)
    space = create_method(f"ditflow:{tiny_dit}", device="cpu").search_space()
    assert (space["guided_share"].centre, space["iterations"].centre, space["temperature"].centre) == (0.2, 5, 2.0)


def test_det_kernel_adds_to_the_video_output_of_every_self_attention(tiny_dit):
    """Untrained (conv2 zero) the transformer is unchanged; trained, each attn1's video output is the stock one plus
    the kernel of the video tokens it received."""
    from baselines.det import add_temporal_kernels
    from vmc.backbones import resolve_backbone

    pipe = resolve_backbone(str(tiny_dit)).pipeline("cpu")
    plain, unet = (pipe.load_unet(pipe.backbone.base) for _ in range(2))
    torch.manual_seed(0)
    names = add_temporal_kernels(unet, 4, frames=3)
    assert len(names) == 2
    g = torch.Generator().manual_seed(7)
    x, text = torch.randn(1, 16, 3, 4, 4, generator=g), torch.randn(1, 16, 32, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(unet(x, 300, text).sample, plain(x, 300, text).sample)
    modules = dict(unet.named_modules())
    seen = {}

    def record(name):
        def hook(module, args, kwargs, output):
            seen[name] = (args, kwargs, output)
        return hook

    for name in names:
        torch.nn.init.normal_(modules[name].temporal_kernel.conv2.weight)
        modules[name].register_forward_hook(record(name), with_kwargs=True)  # runs after the kernel's hook
    with torch.no_grad():
        unet(x, 300, text)
        for name in names:
            args, kwargs, output = seen[name]
            kernel = modules[name].temporal_kernel
            kernel.active = False
            stock = modules[name](*args, **kwargs)  # the same call, without the kernel
            kernel.active = True
            tokens = args[0] if args else kwargs["hidden_states"]
            if isinstance(output, tuple):  # CogVideoX: (video, text); the text part is untouched
                torch.testing.assert_close(output[1], stock[1])
                output, stock = output[0], stock[0]
            torch.testing.assert_close(output, stock + kernel(tokens))
            assert kernel(tokens).abs().max() > 0


def test_det_refuses_bad_settings_before_any_work(tiny_dit):
    from eval.errors import UserError
    from eval.methods import create_method

    det = create_method(f"det:{tiny_dit}", device="cpu")
    for settings, message in (({"tracker": "sift"}, "setting tracker: \"sift\" is not allowed"),
                              ({"tracking_weight": -1}, "setting tracking_weight: -1 is not allowed"),
                              ({"rank": 0}, "setting rank: 0 is not allowed")):
        with pytest.raises(UserError, match=message):
            det.configure(settings)


@pytest.mark.parametrize("rotary", [False, True])
def test_ditflow_reads_the_queries_and_keys_cogvideox_attends_with(rotary, tmp_path, monkeypatch):
    """On the tiny CogVideoX (and with CogVideoX 5B's rotary embeddings switched on): BlockQK's queries and keys are
    the video part of those the stock processor hands to scaled_dot_product_attention."""
    from baselines.ditflow import BlockQK
    from vmc.backbones import resolve_backbone
    from vmc.models.features import UNetFeatures
    from vmc.tools import make_tiny_dit
    from vmc.tools.make_tiny_dit import make

    if rotary:  # 5B's rotary embeddings split the head's channels 1/4 : 3/8 : 3/8 (frames, rows, columns): 16 wide
        transformer, *rest = make_tiny_dit.SIZES["cogvideox"]["tiny"]
        monkeypatch.setitem(make_tiny_dit.SIZES["cogvideox"], "tiny", (
            {**transformer, "attention_head_dim": 16, "use_rotary_positional_embeddings": True}, *rest))
    folder = make(tmp_path / "cog", "cogvideox")
    pipe = resolve_backbone(str(folder)).pipeline("cpu")
    unet = pipe.load_unet(pipe.backbone.base).double()
    assert (unet.rotary is not None) == rotary
    qk = BlockQK(unet, 1, 3, (4, 4))
    g = torch.Generator().manual_seed(8)
    x, text = torch.randn(1, 16, 3, 4, 4, generator=g, dtype=torch.float64), torch.randn(1, 16, 32, generator=g,
                                                                                        dtype=torch.float64)
    seen = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def recording(query, key, *args, **kwargs):
        seen.append((query, key))
        return sdpa(query, key, *args, **kwargs)

    with torch.no_grad():
        q, k = qk(UNetFeatures(unet, outputs=qk.names)(x, 500, text))  # the pass stops at block 1's norm_k
        monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", recording)
        unet(x, 500, text)
    monkeypatch.undo()
    stock_q, stock_k = seen[1]  # block 1's attention
    torch.testing.assert_close(q, stock_q[0, :, -q.shape[1]:])
    torch.testing.assert_close(k, stock_k[0, :, -k.shape[1]:])
