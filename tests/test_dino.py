"""MTBench's DINO temporal consistency: the form against a float64 transcription of DeT's calculate_dino, the
metric against an independent computation on a tiny random ViT saved with save_pretrained, the seeded pooler
of a checkpoint without one, and one clear line for what cannot be loaded."""

import argparse
import json

import numpy as np
import pytest
import torch

from eval.errors import MetricUndefined, UserError
from eval.metrics import Sample
from eval.metrics.dino import DinoMetric, temporal_consistency_mtbench

TINY_VIT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48, image_size=32,
                patch_size=8)


def calculate_dino_reference(feats):
    """DeT's calculate_dino on pooler outputs (float64 loops): first-frame and previous-frame cosines, the first
    frame's previous frame being itself, each averaged over all frames, then halved."""
    u = [f / np.linalg.norm(f) for f in np.asarray(feats, np.float64)]
    prev = [0] + list(range(len(u) - 1))
    first = sum(float(u[t] @ u[0]) for t in range(len(u))) / len(u)
    previous = sum(float(u[t] @ u[prev[t]]) for t in range(len(u))) / len(u)
    return (first + previous) / 2


def save_vit(path, pooler=True, seed=0):
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(seed)
    ViTModel(ViTConfig(**TINY_VIT), add_pooling_layer=pooler).save_pretrained(path)
    ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.485, 0.456, 0.406],
                      image_std=[0.229, 0.224, 0.225]).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory):
    return save_vit(tmp_path_factory.mktemp("dino") / "tiny-dino")


def test_form_is_calculate_dino():
    rng = np.random.default_rng(4)
    for t in (2, 3, 7, 16):
        f = rng.normal(size=(t, 11))
        u = f / np.linalg.norm(f, axis=1, keepdims=True)
        assert temporal_consistency_mtbench(u @ u.T) == pytest.approx(calculate_dino_reference(f), abs=1e-12)
    with pytest.raises(MetricUndefined, match="got 1"):
        temporal_consistency_mtbench(np.ones((1, 1)))


def test_metric_equals_an_independent_computation(vit_dir):
    from transformers import ViTModel

    frames = (np.random.default_rng(9).random((6, 32, 32, 3)) * 255).astype(np.uint8)  # the model's size: no resize
    metric = DinoMetric(f"hf:{vit_dir}", device="cpu")
    values, details = metric.score(Sample(frames, "any prompt"))
    net = ViTModel.from_pretrained(vit_dir).eval()
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    pixels = torch.tensor(((frames / 255.0 - mean) / std).transpose(0, 3, 1, 2), dtype=torch.float32)
    with torch.no_grad():
        pooled = net(pixel_values=pixels).pooler_output.double().numpy()
    assert values["temporal_consistency_mtbench"] == pytest.approx(calculate_dino_reference(pooled), abs=1e-6)
    assert len(details["dino_frame_similarity"]) == 6
    spec = metric.spec()
    assert spec["model"] == "hf:tiny-dino" and spec["pooler"] == "from the checkpoint" and len(spec["sha256"]) == 64
    assert "resize to 32×32 (bilinear" in spec["preprocessing"] and spec["library"] == "transformers"


def test_batches_across_videos_and_resizes_like_the_processor(vit_dir):
    """Several videos of other sizes in one encoder batch; the processor's own (PIL/torchvision) pipeline agrees
    to float error on smooth frames."""
    from transformers import AutoImageProcessor, ViTModel

    from conftest import moving_square

    videos = [moving_square(5, 48, 64, seed=1), moving_square(4, 40, 40, vx=-2, seed=2)]
    metric = DinoMetric(f"hf:{vit_dir}", device="cpu", batch_size=3)
    together = metric.score_many([Sample(v, "p") for v in videos])
    net, proc = ViTModel.from_pretrained(vit_dir).eval(), AutoImageProcessor.from_pretrained(vit_dir)
    for v, (values, _) in zip(videos, together):
        assert values == metric.score(Sample(v, "p"))[0]
        with torch.no_grad():
            pooled = net(**proc(list(v), return_tensors="pt")).pooler_output.double().numpy()
        assert values["temporal_consistency_mtbench"] == pytest.approx(calculate_dino_reference(pooled), abs=2e-3)


def test_a_checkpoint_without_pooler_gets_a_seeded_one(tmp_path):
    path = save_vit(tmp_path / "no-pooler", pooler=False)
    frames = (np.random.default_rng(1).random((4, 32, 32, 3)) * 255).astype(np.uint8)
    a, b = (DinoMetric(f"hf:{path}", device="cpu") for _ in range(2))
    assert a.score(Sample(frames, "p"))[0] == b.score(Sample(frames, "p"))[0]  # repeatable, unlike MTBench's
    assert "manual_seed(0)" in a.spec()["pooler"] and a.spec() == b.spec()


def test_what_cannot_be_loaded_is_one_clear_line(tmp_path, vit_dir, monkeypatch):
    from huggingface_hub import constants

    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(UserError, match="not a ViT model"):
        DinoMetric(f"hf:{tmp_path / 'bert'}", device="cpu")
    with pytest.raises(UserError, match="give hf:ID_OR_DIR"):
        DinoMetric(str(vit_dir), device="cpu")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(UserError, match="huggingface-cli download facebook/dino-vitb16") as e:
        DinoMetric(device="cpu")  # offline, no DINO given and none in the cache
    assert "\n" not in str(e.value) and "--dino-model hf:DIR" in str(e.value)
    from eval.metrics.clip import ClipMetric  # MTBench's CLIP, named by the converted manifest, says the same

    with pytest.raises(UserError, match="huggingface-cli download openai/clip-vit-base-patch32.*--clip-model hf:DIR"):
        ClipMetric("hf:openai/clip-vit-base-patch32", None, device="cpu")


def test_selected_by_the_benchmark_or_the_option(vit_dir):
    from eval.cli_common import add_metric_args, build_scorer, selected_metrics

    p = argparse.ArgumentParser()
    add_metric_args(p)
    plain = p.parse_args([])
    assert "dino" not in selected_metrics(plain, {})
    assert "dino" in selected_metrics(plain, {"dino_model": f"hf:{vit_dir}"})
    assert {"dino", "tracks_mtbench"} <= set(selected_metrics(plain, {"mtbench": True}))
    args = p.parse_args(["--metrics", "dino", "--dino-model", f"hf:{vit_dir}", "--device", "cpu"])
    assert build_scorer(args, {}).specs()["dino"]["model"] == "hf:tiny-dino"
