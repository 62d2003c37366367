import itertools

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from eval.errors import MetricUndefined, UserError
from eval.metrics import Sample
from eval.metrics.clip import ClipMetric, temporal_consistency


def test_temporal_consistency_matches_closed_form_and_brute_force():
    rng = np.random.default_rng(1)
    for t in (2, 3, 8, 29):
        f = rng.normal(size=(t, 17))
        u = f / np.linalg.norm(f, axis=1, keepdims=True)
        brute = np.mean([float(u[i] @ u[j]) for i, j in itertools.combinations(range(t), 2)])
        closed = (np.sum(u.sum(0) ** 2) - t) / (t * (t - 1))
        assert temporal_consistency(u @ u.T) == pytest.approx(brute, abs=1e-12)
        assert temporal_consistency(u @ u.T) == pytest.approx(closed, abs=1e-12)
    with pytest.raises(MetricUndefined):
        temporal_consistency(np.ones((1, 1)))


def test_text_alignment_against_float64_reference(tiny_clip):
    """Our batched on-device uint8 preprocessing + encoder vs open_clip's own PIL transform in float64."""
    cfg, ckpt = tiny_clip
    metric = ClipMetric(str(cfg), str(ckpt), device="cpu", batch_size=3)
    rng = np.random.default_rng(7)
    frames = (rng.random((5, 40, 70, 3)) * 255).astype(np.uint8)
    prompt = "a green triangle is moving up"
    values, details = metric.score(Sample(frames, prompt))

    model, _, preprocess = open_clip.create_model_and_transforms("tiny-clip", pretrained=str(ckpt))
    model = model.double().eval()
    tok = open_clip.get_tokenizer("tiny-clip")
    with torch.no_grad():
        img = model.encode_image(torch.stack([preprocess(Image.fromarray(f)) for f in frames]).double())
        txt = model.encode_text(tok([prompt]))[0]
    img = img / img.norm(dim=1, keepdim=True)
    txt = txt / txt.norm()
    cos = (img @ txt).numpy()
    assert values["text_alignment"] == pytest.approx(cos.mean(), abs=2e-3)
    assert values["clip_score"] == pytest.approx((2.5 * np.maximum(cos, 0)).mean(), abs=5e-3)
    np.testing.assert_allclose(details["text_cos_per_frame"], cos, atol=2e-3)
    sims = (img @ img.T).numpy()
    pairs = sims[np.triu_indices(5, 1)]
    assert values["temporal_consistency"] == pytest.approx(pairs.mean(), abs=2e-3)
    assert details["frame_indices"] == [0, 1, 2, 3, 4]


def test_batches_across_videos_equal_one_video_at_a_time(tiny_clip):
    cfg, ckpt = tiny_clip
    metric = ClipMetric(str(cfg), str(ckpt), device="cpu", batch_size=4)
    rng = np.random.default_rng(3)
    items = [((rng.random((t, 32, 48, 3)) * 255).astype(np.uint8), p) for t, p in
             [(3, "a red circle"), (6, "a blue star"), (2, "a red circle")]]
    together = metric.score_many([Sample(*it) for it in items])
    for (frames, prompt), (values, _) in zip(items, together):
        alone, _ = metric.score(Sample(frames, prompt))
        for k in values:
            assert values[k] == pytest.approx(alone[k], abs=1e-5)


def test_spec_records_model_weights_checksum_preprocessing_frames_dtype(tiny_clip):
    cfg, ckpt = tiny_clip
    spec = ClipMetric(str(cfg), str(ckpt), device="cpu", num_frames=4).spec()
    assert spec["model"] == "tiny-clip" and spec["weights"] == "tiny-clip.pt" and len(spec["sha256"]) == 64
    assert "bicubic" in spec["preprocessing"] and "/255" in spec["preprocessing"]
    assert spec["frames"] == "uniform 4" and spec["dtype"] == "float32"


def test_one_frame_gives_undefined_temporal_consistency(tiny_clip):
    cfg, ckpt = tiny_clip
    metric = ClipMetric(str(cfg), str(ckpt), device="cpu")
    values, _ = metric.score(Sample(np.zeros((1, 32, 32, 3), np.uint8) + 90, "x"))
    assert isinstance(values["temporal_consistency"], MetricUndefined)


def test_bad_clip_arguments(tmp_path, tiny_clip):
    cfg, _ = tiny_clip
    with pytest.raises(UserError, match="unknown CLIP model 'ViT-Q-99'"):
        ClipMetric("ViT-Q-99", None, device="cpu")
    with pytest.raises(UserError, match="no pretrained tag 'nonsense'"):
        ClipMetric("ViT-B-32", "nonsense", device="cpu")
    with pytest.raises(UserError, match="no such CLIP checkpoint file"):
        ClipMetric(str(cfg), str(tmp_path / "missing.pt"), device="cpu")
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="broken.json: not valid JSON"):
        ClipMetric(str(bad), None, device="cpu")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot load CLIP checkpoint"):
        ClipMetric(str(cfg), str(junk), device="cpu")
