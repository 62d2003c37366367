"""MotionInversion's recipe: where its embeddings go, that they change nothing until trained, that training changes
them alone, and that the adapter rebuilds the same videos through eval.run and vmc.generate --adapter."""

import contextlib
import json
import shutil

import numpy as np
import pytest
import torch
import yaml

from conftest import REPO, run_main
from unet_reference import tiny_configs
from baselines.motion_inversion import MotionInversionMethod, deepest_temporal_blocks
from vmc.configs import load_config
from vmc.models import Show1UNet3D
from vmc.models.motion_embedding import add_motion_embeddings


@contextlib.contextmanager
def one_thread():
    """Compute with one thread, as eval.run does on a CPU: its videos and these are then made alike, and small
    models run faster so on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


def shapes_keyframes(folder, **adaptation):
    """The shipped shapes world's keyframe stage alone (a cascade run stops at its 8 keyframes), sampled in 3
    steps, with `adaptation` settings per method name."""
    shutil.copytree(REPO / "vmc" / "shapes" / "weights" / "show-1-base", folder / "show-1-base")
    meta = json.loads((REPO / "vmc" / "shapes" / "weights" / "cascade.json").read_text())
    meta["settings"]["keyframe_steps"] = 3
    (folder / "cascade.json").write_text(json.dumps({**meta, **adaptation}))
    return folder


def _blocks(config) -> list[str]:
    with torch.device("meta"):  # module names only: nothing allocated
        return deepest_temporal_blocks(Show1UNet3D.from_config(config))


def test_embeddings_go_on_the_deepest_temporal_blocks():
    def at(path, level, count):
        return [f"{path}_blocks.{level}.temp_attentions.{i}.transformer_blocks.0" for i in range(count)]

    assert _blocks(load_config("show1-base-unet")) == at("down", 3, 3) + at("up", 0, 4)  # 1280 channels, as official
    shapes = json.loads((REPO / "vmc/shapes/weights/show-1-base/unet/config.json").read_text())
    assert _blocks(shapes) == at("down", 2, 1) + at("up", 0, 2)
    assert _blocks(tiny_configs()["keyframes"]) == at("down", 3, 2) + at("up", 0, 3)


def test_zero_embeddings_change_nothing_and_values_enter_as_frame_differences():
    torch.manual_seed(0)
    base = Show1UNet3D.from_config(tiny_configs()["keyframes"]).eval()
    unet = Show1UNet3D.from_config(tiny_configs()["keyframes"]).eval()
    unet.load_state_dict(base.state_dict())
    g = torch.Generator().manual_seed(1)
    x, t = torch.randn(1, 3, 3, 16, 24, generator=g), torch.tensor([500])
    text = torch.randn(1, 5, unet.config.encoder_hid_dim, generator=g)
    added = add_motion_embeddings(unet, deepest_temporal_blocks(unet), 3, 16, 24, text)
    assert {tuple(e.query_key.shape) for e in added.values()} == {(3, 128)}
    assert {tuple(v.shape) for e in added.values() for v in e.value.values()} == {(6, 3, 128)}  # 2 × 3 positions
    assert {n for n, _ in unet.named_parameters()} - {n for n, _ in base.named_parameters()} == {
        f"{b}.motion_embedding.{p}" for b in added for p in ("query_key", "value.attn1", "value.attn2")}
    with torch.no_grad():
        want = base(x, t, text).sample
        assert torch.equal(unet(x, t, text).sample, want)
        for e in added.values():
            e.frame_differences = True
        assert torch.equal(unet(x, t, text).sample, want)

        # as frame differences, a value embedding that is the same in every frame enters at frame 0 only
        block = next(iter(added.values()))
        same = torch.randn(6, 1, 128, generator=g)
        block.value["attn1"].copy_(same.expand(6, 3, 128))
        constant = unet(x, t, text).sample
        block.frame_differences = False
        block.value["attn1"].zero_()[:, :1] = same
        torch.testing.assert_close(unet(x, t, text).sample, constant)
        assert not torch.allclose(constant, want)
        with pytest.raises(ValueError, match="motion embeddings for 3 frames"):
            unet(x[:, :, :2], t, text)


def test_training_changes_the_embeddings_alone(tmp_path):
    from diffusers import DDPMScheduler

    method = MotionInversionMethod(str(shapes_keyframes(tmp_path, **{"motion-inversion": {"steps": 3}})), "cpu")
    unet = method._base_unet()
    method.prepare_unet(unet, method.config.own)
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    video = torch.rand(1, 3, 8, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    text = method.cascade.text_embeddings(["a square is moving to the right"])[0]
    config = method.config.train
    assert (config.lr, config.loss, config.max_grad_norm) == (0.02, "eps_mse", None)
    result = method.train(unet, video, text, DDPMScheduler.from_config(
        method.cascade.load_scheduler(method.backbone.base).config), config)
    changed = {k for k, v in unet.state_dict().items() if not torch.equal(v, before[k])}
    embeddings = {k for k in before if ".motion_embedding." in k}
    assert changed == embeddings == set(result["trained"]) and len(embeddings) == 3 * 3
    assert len(result["history"]) == 3


def test_adapter_round_trip_through_eval_run_and_generate(benchmark_dir, tiny_clip, tmp_path, capsys, monkeypatch):
    import eval.video
    from eval.run import main as run_main_cli
    from vmc.generate import main as generate_main

    weights = shapes_keyframes(tmp_path / "shapes", **{"motion-inversion": {"steps": 3, "inversion_steps": 2}})
    cfg, ckpt = tiny_clip
    manifest = yaml.safe_load((benchmark_dir / "mini.yaml").read_text())
    manifest["cases"] = manifest["cases"][1:]  # one case, one prompt
    manifest["metrics"] = {"clip_model": str(cfg), "clip_pretrained": str(ckpt)}
    (benchmark_dir / "one.yaml").write_text(yaml.safe_dump(manifest))
    made = []
    generate = MotionInversionMethod.generate
    monkeypatch.setattr(MotionInversionMethod, "generate", lambda self, *a: made.append(generate(self, *a)) or made[-1])
    out = tmp_path / "run"
    assert run_main(run_main_cli, "--methods", f"motion-inversion:{weights}", "--benchmark", benchmark_dir / "one.yaml",
                    "--out", out, "--device", "cpu", capsys=capsys)[0] == 0
    folder = next((out / "cache").glob("motion-inversion-shapes/down/*/adapter.json")).parent
    info = json.loads((folder / "adapter.json").read_text())
    assert info["method"] == "motion-inversion" and info["settings"] == {"noise_prior": 0.5}
    assert info["tensors"] and all(".motion_embedding." in n for n in info["tensors"])
    assert info["protocol"]["trained_parameters"] == sum(np.prod(s) for s in info["tensors"].values())
    assert (folder / "inverted.safetensors").is_file()

    written = {}  # vmc.generate's frames, before H.264
    monkeypatch.setattr(eval.video, "write_video", lambda path, video: written.setdefault("video", video))
    code, _, err = run_main(generate_main, "--adapter", folder, "--prompt", "a blue square is falling", "--seed", 0,
                            "--device", "cpu", "--out", tmp_path / "x.mp4", capsys=capsys)
    assert code == 0, err
    assert len(made) == 1 and np.array_equal(written["video"].frames, made[0].frames)
