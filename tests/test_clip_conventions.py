"""The CLIP conventions of other suites (torchmetrics' ×100 CLIPScore, consecutive-frame and VBench consistency)
and Hugging Face CLIP models through `hf:`."""

import argparse
import json
import shutil

import numpy as np
import pytest
import torch

from conftest import moving_square
from eval.errors import MetricUndefined, UserError
from eval.metrics import Sample
from eval.metrics.clip import (ClipMetric, temporal_consistency_consecutive, temporal_consistency_vbench,
                               text_alignment_x100)

NEW_FIELDS = ("text_alignment_x100", "temporal_consistency_consecutive", "temporal_consistency_vbench")


def unit_rows(rng, t, d=17):
    f = rng.normal(size=(t, d))
    return f / np.linalg.norm(f, axis=1, keepdims=True)


def vbench_reference(u):
    """VBench's loop for one video (vbench/background_consistency.py), in float64."""
    video_sim = 0.0
    for i in range(1, len(u)):
        video_sim += (max(0.0, float(u[i - 1] @ u[i])) + max(0.0, float(u[0] @ u[i]))) / 2
    return video_sim / (len(u) - 1)


def torchmetrics_reference(frames_u, text_u):
    """torchmetrics' CLIPScore: 100·cos summed over (image, caption) pairs, the mean clamped at 0."""
    score = sum(100 * float(f @ text_u) for f in frames_u)
    return max(score / len(frames_u), 0.0)


def test_conventions_against_float64_loops():
    rng = np.random.default_rng(5)
    for t in (2, 3, 8, 29):
        u = unit_rows(rng, t)
        sim = u @ u.T
        assert temporal_consistency_consecutive(sim) == pytest.approx(
            np.mean([u[i] @ u[i + 1] for i in range(t - 1)]), abs=1e-12)
        assert temporal_consistency_vbench(sim) == pytest.approx(vbench_reference(u), abs=1e-12)
        g = unit_rows(rng, 1)[0]
        assert text_alignment_x100(u @ g) == pytest.approx(torchmetrics_reference(u, g), abs=1e-9)


def test_x100_clamps_the_mean_not_each_frame():
    cos = np.array([0.3, -0.1, -0.05])
    assert text_alignment_x100(cos) == pytest.approx(5.0)  # per-frame clamping would give 10.0
    assert text_alignment_x100(-cos) == 0.0


def test_vbench_clamps_each_term_and_reads_the_first_frame():
    sim = np.array([[1.0, -0.5, 0.8], [-0.5, 1.0, 0.2], [0.8, 0.2, 1.0]])
    # t=2: ½(max(0, −0.5) + max(0, −0.5)) = 0; t=3: ½(0.2 + 0.8) = 0.5
    assert temporal_consistency_vbench(sim) == pytest.approx(0.25)
    assert temporal_consistency_consecutive(sim) == pytest.approx(-0.15)


@pytest.mark.parametrize("fn", [temporal_consistency_consecutive, temporal_consistency_vbench])
def test_one_frame_is_undefined(fn):
    with pytest.raises(MetricUndefined, match="got 1"):
        fn(np.ones((1, 1)))


def test_fields_ranges_and_values_agree(tiny_clip):
    cfg, ckpt = tiny_clip
    assert set(NEW_FIELDS) <= set(ClipMetric.fields)
    metric = ClipMetric(str(cfg), str(ckpt), device="cpu")
    frames = (np.random.default_rng(2).random((4, 32, 40, 3)) * 255).astype(np.uint8)
    values, _ = metric.score(Sample(frames, "x"))
    assert set(values) == set(ClipMetric.fields)
    for k, v in values.items():
        lo, hi = ClipMetric.fields[k].range
        assert lo <= v <= hi
    one, _ = metric.score(Sample(np.zeros((1, 32, 32, 3), np.uint8) + 90, "x"))
    assert isinstance(one["temporal_consistency_vbench"], MetricUndefined)
    assert isinstance(one["temporal_consistency_consecutive"], MetricUndefined)


def test_existing_fields_and_open_clip_spec_unchanged(tiny_clip):
    """Values and spec recorded before the new conventions were added: old run folders still resume."""
    cfg, ckpt = tiny_clip
    metric = ClipMetric(str(cfg), str(ckpt), device="cpu")
    frames = (np.random.default_rng(11).random((6, 36, 52, 3)) * 255).astype(np.uint8)
    values, details = metric.score(Sample(frames, "a red circle is moving to the right"))
    assert values["text_alignment"] == pytest.approx(0.4564122313669286, abs=1e-6)
    assert values["clip_score"] == pytest.approx(1.1410305784173214, abs=1e-6)
    assert values["temporal_consistency"] == pytest.approx(0.993472482173514, abs=1e-6)
    assert values["text_alignment_x100"] == pytest.approx(100 * values["text_alignment"], abs=1e-9)
    spec = metric.spec()
    assert len(spec.pop("sha256")) == 64
    assert spec == {"model": "tiny-clip", "weights": "tiny-clip.pt", "frames": "all", "dtype": "float32",
                    "library": "open_clip",
                    "preprocessing": "uint8 RGB → resize shortest side to fit 32×32 → center crop 32×32 (bicubic, "
                                     "antialias, rounded to uint8 levels) → /255 → normalize "
                                     "mean=(0.48145466, 0.4578275, 0.40821073) std=(0.26862954, 0.26130258, "
                                     "0.27577711)"}


@pytest.fixture(scope="module")
def hf_clip_dir(tmp_path_factory):
    """A tiny random transformers CLIP model saved with save_pretrained, with a byte-level tokenizer (no merges)
    and an image processor that resizes the short side to 36 and crops 32×32."""
    from open_clip.tokenizer import bytes_to_unicode
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    d = tmp_path_factory.mktemp("hf-clip")
    chars = list(bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    CLIPTokenizer(vocab=vocab, merges=[]).save_pretrained(d)
    config = CLIPConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 77, "bos_token_id": len(vocab) - 2,
                     "eos_token_id": len(vocab) - 1, "pad_token_id": len(vocab) - 1},
        vision_config={"image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 37,
                       "num_hidden_layers": 1, "num_attention_heads": 2},
        projection_dim=16)
    torch.manual_seed(0)
    model = CLIPModel(config)
    with torch.no_grad():  # this random model puts frames and prompts at negative cosines: turn them positive,
        model.text_projection.weight.neg_()  # so that the test sees more than the clamp at 0
    model.save_pretrained(d)
    CLIPImageProcessor(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32}).save_pretrained(d)
    return d


def test_hf_x100_equals_torchmetrics_formula_on_the_models_own_embeddings(hf_clip_dir):
    from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

    metric = ClipMetric(f"hf:{hf_clip_dir}", None, device="cpu", batch_size=3)
    # frames at the processor's resize size: its uint8 resize kernel and our float one (rounded) agree to one
    # level only, which a random model amplifies; the crop offset (67 − 32) / 2 = 17.5 is floored as HF does
    frames = moving_square(num_frames=5, height=36, width=67)
    prompt = "a green triangle is moving up"
    values, details = metric.score(Sample(frames, prompt))

    # independently: transformers' own processor, tokenizer and model, as torchmetrics' _get_features calls them
    model = CLIPModel.from_pretrained(hf_clip_dir, local_files_only=True).eval()
    proc = CLIPImageProcessor.from_pretrained(hf_clip_dir, local_files_only=True)
    tok = AutoTokenizer.from_pretrained(hf_clip_dir, local_files_only=True)
    pixels = proc(images=[torch.from_numpy(f).permute(2, 0, 1) for f in frames], return_tensors="pt")["pixel_values"]
    text = tok([prompt], padding=True, return_tensors="pt")
    with torch.no_grad():
        img, txt = model.get_image_features(pixel_values=pixels), model.get_text_features(**text)
    img, txt = (x if isinstance(x, torch.Tensor) else x.pooler_output for x in (img, txt))
    img = img.double() / img.double().norm(dim=-1, keepdim=True)
    txt = txt.double() / txt.double().norm(dim=-1, keepdim=True)
    score = 100 * (img * txt).sum(-1)
    assert float(score.mean()) > 5
    assert values["text_alignment_x100"] == pytest.approx(max(float(score.mean()), 0.0), abs=1e-3)
    assert 100 * values["text_alignment"] == pytest.approx(float(score.mean()), abs=1e-3)
    np.testing.assert_allclose(details["text_cos_per_frame"], score.numpy() / 100, atol=1e-4)
    torch.testing.assert_close(metric.preprocess(torch.from_numpy(frames), torch.float32), pixels)

    # resized frames: one uint8 level at most (on pixel noise, float and uint8 bicubic kernels differ by up to 12)
    frames = moving_square(num_frames=3, height=45, width=80)
    pixels = proc(images=[torch.from_numpy(f).permute(2, 0, 1) for f in frames], return_tensors="pt")["pixel_values"]
    ours = metric.preprocess(torch.from_numpy(frames), torch.float32)
    assert ours.shape == pixels.shape and float((ours - pixels).abs().max()) < 1.01 / 255 / min(proc.image_std)


def test_hf_spec(hf_clip_dir):
    spec = ClipMetric(f"hf:{hf_clip_dir}", None, device="cpu").spec()
    assert spec["model"] == f"hf:{hf_clip_dir.name}" and spec["library"] == "transformers"  # as portable as a
    # model-config JSON's stem: the checksum, not the folder's place, identifies the weights
    assert spec["weights"] == "model.safetensors" and len(spec["sha256"]) == 64
    assert "shortest side to 36 → center crop 32×32, offset floored (bicubic" in spec["preprocessing"]
    assert spec["dtype"] == "float32"


def test_hf_hub_id_from_the_cache_records_the_snapshot_checksum(tmp_path, hf_clip_dir, monkeypatch):
    """A hub id resolves through the Hugging Face cache (offline here) and its weights are hashed as a folder's."""
    from huggingface_hub import constants

    repo = tmp_path / "hub" / "models--org--tiny-clip"
    shutil.copytree(hf_clip_dir, repo / "snapshots" / ("a" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    spec = ClipMetric("hf:org/tiny-clip", None, device="cpu").spec()
    local = ClipMetric(f"hf:{hf_clip_dir}", None, device="cpu").spec()
    assert spec["model"] == "hf:org/tiny-clip"
    assert {k: spec[k] for k in ("weights", "sha256", "preprocessing")} == {
        k: local[k] for k in ("weights", "sha256", "preprocessing")}


def test_bad_hf_arguments(tmp_path, hf_clip_dir):
    with pytest.raises(UserError, match="no such Hugging Face model folder"):
        ClipMetric(f"hf:{tmp_path / 'missing'}", None, device="cpu")
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(UserError, match="not a CLIP model .model_type 'bert'."):
        ClipMetric(f"hf:{tmp_path / 'bert'}", None, device="cpu")
    with pytest.raises(UserError, match="cannot read a Hugging Face model config"):
        ClipMetric(f"hf:{tmp_path}", None, device="cpu")
    with pytest.raises(UserError, match="give no --clip-pretrained"):
        ClipMetric(f"hf:{hf_clip_dir}", "openai", device="cpu")


def test_cli_hf_model_ignores_the_benchmarks_open_clip_weights(hf_clip_dir):
    from eval.cli_common import add_metric_args, build_scorer

    p = argparse.ArgumentParser()
    add_metric_args(p)
    args = p.parse_args(["--clip-model", f"hf:{hf_clip_dir}", "--device", "cpu"])
    scorer = build_scorer(args, {"clip_model": "ViT-B-32", "clip_pretrained": "openai"})
    assert scorer.specs()["clip"]["library"] == "transformers"
