"""python -m vmc.train with an official VMC config (same keys and interpolations, tiny numbers)."""

import json

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


def test_official_config_trains_and_generates(tmp_path, capsys):
    tiny = _fast_tiny(tmp_path)
    frames = tmp_path / "video_images" / "square"
    frames.mkdir(parents=True)
    for i, f in enumerate(moving_square(num_frames=8)):
        Image.fromarray(f).save(frames / f"{i + 1}.jpg")
    config = tmp_path / "square.yml"
    config.write_text(OFFICIAL.format(base=tiny))
    code, out, err = run_main(train_main, "--config", config, "--out", tmp_path / "adapter", "--device", "cpu",
                              capsys=capsys)
    assert code == 0, err
    info = json.loads((tmp_path / "adapter" / "adapter.json").read_text())
    assert info["steps"] == 3 and info["train"]["lr"] == 1e-4 and info["seed"] == 12345
    assert info["inversion"]["steps"] == 3 and info["train_prompt"] == "a square is moving"
    sample = read_video(tmp_path / "adapter" / "samples" / "a-red-square-is-moving__s12345.mp4")
    assert sample.frames.shape == (29, 128, 192, 3)


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
