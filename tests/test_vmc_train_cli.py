"""python -m vmc.train with an official VMC config (same keys and interpolations, tiny numbers)."""

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from conftest import moving_square, run_main
from eval.video import read_video
from test_vmc_method import _fast_tiny
from vmc.train import main as train_main

OFFICIAL = """pretrained_t2v_path: "{base}"
vid_name: "square"
logdir: "./outputs"
train_steps: 3
validation_steps: 100
seed: 12345
lr: 1e-4
num_inv_steps: 3

train_dataset:
  path: "video_images/${{..vid_name}}"
  prompt: "a square is moving"
  n_sample_frame: 8
  sampling_rate: 1
  stride: 1

validation_sample_logger:
  prompts: [
    "a red square is moving",
  ]
  clip_length: "${{..train_dataset.n_sample_frame}}"
  sample_seeds: [12345]
  num_inference_steps: 2
  guidance_scale: 9.0
  height: 16
  width: 24
"""


def _official_case(tmp_path, tiny) -> Path:
    """An official-style config over a moving-square clip (frames as numbered JPEGs) on the backbone `tiny`."""
    frames = tmp_path / "video_images" / "square"
    frames.mkdir(parents=True)
    for i, f in enumerate(moving_square(num_frames=8)):
        Image.fromarray(f).save(frames / f"{i + 1}.jpg")
    config = tmp_path / "square.yml"
    config.write_text(OFFICIAL.format(base=tiny))
    return config


def test_official_guidance_also_governs_the_inverted_start(tmp_path):
    from vmc.train import load_train_config

    config = tmp_path / "square.yml"
    config.write_text(OFFICIAL.format(base=tmp_path))
    settings = load_train_config(config)["settings"]
    assert settings["keyframe_guidance"] == settings["inverted_keyframe_guidance"] == 9.0


def test_official_config_trains_and_generates(tmp_path, capsys, monkeypatch):
    tiny = _fast_tiny(tmp_path)
    config = _official_case(tmp_path, tiny)
    code, out, err = run_main(train_main, "--config", config, "--out", tmp_path / "adapter", "--device", "cpu",
                              "--inversion-schedule", "sd15", capsys=capsys)
    assert code == 0, err
    info = json.loads((tmp_path / "adapter" / "adapter.json").read_text())
    assert info["steps"] == 3 and info["train"]["lr"] == 1e-4 and info["seed"] == 12345
    assert info["inversion"] == {"steps": 3, "schedule": "sd15"} and info["train_prompt"] == "a square is moving"
    sample = read_video(tmp_path / "adapter" / "samples" / "a-red-square-is-moving__s12345.mp4")
    assert sample.frames.shape == (29, 128, 192, 3)

    # vmc.generate --adapter (backbone from adapter.json) starts the keyframes from the inverted clip with the
    # adapted UNet: its keyframes match an in-process computation and differ from plain text-to-video.
    import torch
    from safetensors.torch import load_file

    from vmc.adapter import load_adapter
    from vmc.generate import main as generate_main
    from vmc.backbones import to_uint8
    from vmc.backbones.show1 import Show1Cascade

    import eval.video

    written = {}  # the frames vmc.generate writes (random tiny outputs are noise, which H.264 does not keep)
    monkeypatch.setattr(eval.video, "write_video", lambda path, video: written.__setitem__(Path(path).stem, video))
    common = ["--prompt", "a red square is moving", "--seed", "12345", "--device", "cpu", "--stages", "keyframes"]
    for name, extra in (("adapter", ["--adapter", tmp_path / "adapter"]), ("t2v", ["--backbone", tiny])):
        code, _, err = run_main(generate_main, *extra, *common, "--out", tmp_path / f"{name}.mp4", capsys=capsys)
        assert code == 0, err
    videos = {name: written[name].frames.astype(int) for name in ("adapter", "t2v")}
    cascade = Show1Cascade(Show1Cascade.from_cascade_dir(tiny), "cpu")
    unet = cascade.load_unet(cascade.backbone.base)
    load_adapter(tmp_path / "adapter", unet)
    noise = load_file(str(tmp_path / "adapter" / "inverted.safetensors"))["noise"]
    with torch.no_grad():
        expected = to_uint8(cascade.sample_keyframes("a red square is moving", 12345, noise, unet)[0]).astype(int)
    assert abs(videos["adapter"] - expected).mean() < 0.5  # float noise only
    assert abs(videos["t2v"] - expected).mean() > 10


def test_bad_configs(tmp_path, capsys):
    (tmp_path / "case.yaml").write_text("reference: clip.mp4\ntrain_prompt: a dog is running\n")
    code, _, err = run_main(train_main, "--config", tmp_path / "case.yaml", "--out", tmp_path / "o", capsys=capsys)
    assert code == 2 and "missing target_prompts" in err
    (tmp_path / "off.yaml").write_text("train_dataset:\n  prompt: x\n")
    code, _, err = run_main(train_main, "--config", tmp_path / "off.yaml", "--out", tmp_path / "o", capsys=capsys)
    assert code == 2 and "train_dataset.path is missing" in err
    code, _, err = run_main(train_main, "--config", tmp_path / "none.yaml", "--out", tmp_path / "o", capsys=capsys)
    assert code == 2 and "no such config" in err
    assert not (tmp_path / "o").exists()


def test_sd15_inversion_on_a_v_backbone_fails_before_training(tmp_path, capsys):
    tiny = _fast_tiny(tmp_path)
    config_path = Path(tiny) / "show-1-base" / "scheduler" / "scheduler_config.json"
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "prediction_type": "v_prediction"}))
    config = _official_case(tmp_path, tiny)
    code, out, err = run_main(train_main, "--config", config, "--out", tmp_path / "adapter", "--device", "cpu",
                              "--inversion-schedule", "sd15", capsys=capsys)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "ε-prediction backbone" in errors[0]
    assert "vmc adaptation" not in err and not (tmp_path / "adapter" / "adapter.json").exists()


HUB = {"interpolation": "showlab/show-1-interpolation@main", "sr1": "showlab/show-1-sr1@main",
       "if_sr": "DeepFloyd/IF-II-L-v1.0@main", "sr2": "showlab/show-1-sr2@main"}
ALL = ("show-1-interpolation", "show-1-sr1", "IF-II-L-v1.0", "show-1-sr2")


@pytest.fixture(scope="module")
def tiny_cascade(tmp_path_factory):
    from vmc.tools.make_tiny_cascade import make

    return make(tmp_path_factory.mktemp("cascade") / "tiny")


def _weights(tiny, folder: Path, siblings=()) -> Path:
    """`folder` holding copies of the tiny cascade's show-1-base and of the `siblings` named (no cascade.json), as
    a user's download of the hub repos would be; returns the show-1-base copy."""
    for name in ("show-1-base", *siblings):
        shutil.copytree(tiny / name, folder / name)
    return folder / "show-1-base"


@pytest.mark.parametrize("siblings,line", [
    (ALL, "keyframes from {w}/show-1-base; interpolation from {w}/show-1-interpolation; sr1 from {w}/show-1-sr1; "
          "IF-II-L from {w}/IF-II-L-v1.0; sr2 from {w}/show-1-sr2"),
    (ALL[:1], "keyframes from {w}/show-1-base; interpolation from {w}/show-1-interpolation; sr1, IF-II-L, sr2 from "
              "the hub (showlab/show-1-sr1@main, DeepFloyd/IF-II-L-v1.0@main, showlab/show-1-sr2@main)"),
    ((), "keyframes from {w}/show-1-base; interpolation, sr1, IF-II-L, sr2 from the hub "
         "(showlab/show-1-interpolation@main, showlab/show-1-sr1@main, DeepFloyd/IF-II-L-v1.0@main, "
         "showlab/show-1-sr2@main)"),
])
def test_a_show1_base_copy_takes_the_other_stages_from_its_siblings_else_the_hub(tiny_cascade, tmp_path,
                                                                                  siblings, line):
    from vmc.backbones import resolve_backbone
    from vmc.backbones.show1 import STAGES, sources
    from vmc.method import VMCMethod

    weights = tmp_path / "weights"
    base = _weights(tiny_cascade, weights, siblings)
    notes = []
    backbone = resolve_backbone(str(base), note=notes.append)  # nothing is loaded, so nothing is downloaded
    assert notes == ["backbone: " + line.format(w=weights)]
    expected = {"base": str(base), **{k: str(weights / d) if d in siblings else HUB[k] for k, d in zip(HUB, ALL)}}
    assert sources(backbone) == expected and backbone.stages == STAGES and backbone.name == "show-1-base"
    # run.json records where the stages came from (a cascade directory does not: it is named by itself)
    assert VMCMethod(str(base), device="cpu").info()["sources"] == expected
    assert "sources" not in VMCMethod(str(tiny_cascade), device="cpu").info()


def test_official_config_on_a_show1_base_copy_alone_trains_offline(tiny_cascade, tmp_path, capsys, monkeypatch):
    """Adapting needs only the keyframe stage: the hub stages are named (and recorded), never loaded."""
    from vmc.generate import main as generate_main
    from vmc.backbones.show1 import Show1Cascade

    load = Show1Cascade._load

    def local_only(self, cls, source, subfolder, **kw):
        assert Path(source.path).is_dir(), f"{source.path} would be downloaded"
        return load(self, cls, source, subfolder, **kw)

    monkeypatch.setattr(Show1Cascade, "_load", local_only)
    base = _weights(tiny_cascade, tmp_path / "weights")
    config = _official_case(tmp_path, base)
    code, out, err = run_main(train_main, "--config", config, "--out", tmp_path / "adapter", "--device", "cpu",
                              "--no-samples", capsys=capsys)
    assert code == 0, err
    assert [line for line in err.splitlines() if line.startswith("backbone:")] == [
        f"backbone: keyframes from {base}; interpolation, sr1, IF-II-L, sr2 from the hub ({', '.join(HUB.values())})"]
    info = json.loads((tmp_path / "adapter" / "adapter.json").read_text())
    assert info["backbone"] == str(base) and info["sources"] == {"base": str(base), **HUB} and info["steps"] == 3
    # vmc.generate --adapter finds the same backbone again (at the config's sizes); its keyframes need only the copy
    sizes = ["--set", "height=16", "--set", "width=24", "--set", "keyframe_steps=2"]
    code, out, err = run_main(generate_main, "--adapter", tmp_path / "adapter", "--prompt", "a red square is moving",
                              "--stages", "keyframes", *sizes, "--device", "cpu", "--out", tmp_path / "x.mp4",
                              capsys=capsys)
    assert code == 0 and (tmp_path / "x.mp4").is_file(), err


@pytest.mark.parametrize("folder,problem", [
    ("empty", "missing unet/config.json, scheduler/, text_encoder/, tokenizer/"),
    ("show-1-interpolation", "missing text_encoder/, tokenizer/"),
    ("interpolation-with-t5", "its UNet takes 7 input channels, not 3: another stage's folder?"),
])
def test_neither_a_cascade_nor_a_show1_base_copy_is_one_clear_error(tiny_cascade, tmp_path, capsys, folder,
                                                                     problem):
    path = tmp_path / "weights" / folder
    if folder == "empty":
        path.mkdir(parents=True)
    else:
        shutil.copytree(tiny_cascade / "show-1-interpolation", path)
    if folder == "interpolation-with-t5":
        for part in ("text_encoder", "tokenizer"):
            shutil.copytree(tiny_cascade / "show-1-base" / part, path / part)
    config = _official_case(tmp_path, path)
    code, out, err = run_main(train_main, "--config", config, "--out", tmp_path / "adapter", capsys=capsys)
    assert code == 2 and err.strip().splitlines() == [
        f"error: {path}: neither a cascade directory (no show-1-base/ inside) nor a copy of show-1-base ({problem})"]
    assert not (tmp_path / "adapter").exists()
