"""MTBench's motion fidelity (DeT's evaluation.py) on point tracks: the cosine form and the hybrid against
plain float64 transcriptions of MTBench's formulas, on fresh random tracks of equal and different lengths; the
still-step rule where MTBench gives NaN; the hybrid's seeded subsample; the metric on videos."""

import math

import numpy as np
import pytest
import torch

from conftest import moving_square
from eval.metrics import Sample
from eval.metrics.tracks import (HYBRID_SEED, HYBRID_TRACKS, LKTracker, MTBenchTrackMetric, TrackMotionMetric,
                                 hybrid_indices, motion_fidelity)


def mtbench_frame_ids(longer, shorter):
    """MTBench: torch.linspace(0, T_long - 1, T_short).to(torch.int32) (float32 positions, truncated)."""
    return [int(v) for v in torch.linspace(0, longer - 1, shorter).to(torch.int32)]


def match(a, b):
    if len(a[0]) > len(b[0]):
        ids = mtbench_frame_ids(len(a[0]), len(b[0]))
        a = [[tr[i] for i in ids] for tr in a]
    elif len(a[0]) < len(b[0]):
        ids = mtbench_frame_ids(len(b[0]), len(a[0]))
        b = [[tr[i] for i in ids] for tr in b]
    return a, b


def elements(track):
    """[initial position, displacements], each divided by its norm (plain floats)."""
    out = [(float(track[0][0]), float(track[0][1]))]
    out += [(float(track[t + 1][0]) - float(track[t][0]), float(track[t + 1][1]) - float(track[t][1]))
            for t in range(len(track) - 1)]
    return [(x / math.hypot(x, y), y / math.hypot(x, y)) for x, y in out]


def cosine_matrix(a, b):
    ea, eb = [elements(t) for t in a], [elements(t) for t in b]
    return [[sum(u[0] * v[0] + u[1] * v[1] for u, v in zip(p, q)) / len(p) for q in eb] for p in ea]


def mtbench_cosine(a, b):
    """get_cosine_similarity_score(gen, original).max(dim=1)[0].mean()."""
    a, b = match(a, b)
    return sum(max(row) for row in cosine_matrix(a, b)) / len(a)


def mtbench_hybrid(a, b, ids):
    """0.5 · the cosine term + 0.5 · mean of row maxima of 1 / (1 + mean pairwise point distance) on a[ids], b[ids]."""
    cos = mtbench_cosine(a, b)
    a, b = match([a[i] for i in ids], [b[i] for i in ids])
    sim = [[1 / (1 + sum(math.dist(p, q) for p in ta for q in tb) / (len(ta) * len(tb))) for tb in b] for ta in a]
    return 0.5 * cos + 0.5 * sum(max(row) for row in sim) / len(a)


def random_tracks(rng, n, t):
    """Normalised coordinates, as MTBench's tracks: a random walk inside the frame."""
    return (np.cumsum(rng.normal(0, 0.02, (n, t, 2)), axis=1) + rng.uniform(0.2, 0.8, (n, 1, 2))).astype(np.float32)


SIZES = [(5, 5, 6, 6), (7, 3, 9, 9), (4, 6, 13, 49), (6, 4, 49, 13), (1, 3, 8, 5), (60, 60, 7, 10)]


@pytest.mark.parametrize("n,m,ta,tb", SIZES)
def test_cosine_form_is_mtbench_formula(n, m, ta, tb):
    rng = np.random.default_rng(n * 1000 + m * 100 + ta + tb)
    a, b = random_tracks(rng, n, ta), random_tracks(rng, m, tb)
    r = motion_fidelity(a, b, "mtbench")
    assert r.value == pytest.approx(mtbench_cosine(a.tolist(), b.tolist()), abs=1e-12)
    assert (r.n_tracks, r.n_reference, r.n_static, r.n_static_reference) == (n, m, 0, 0)


@pytest.mark.parametrize("n,m,ta,tb", [s for s in SIZES if min(s[:2]) >= 3])
def test_hybrid_is_mtbench_formula_on_its_subsample(n, m, ta, tb):
    rng = np.random.default_rng(7 + n + m + ta + tb)
    a, b = random_tracks(rng, n, ta), random_tracks(rng, m, tb)
    ids = hybrid_indices(n, m, HYBRID_SEED)
    assert len(ids) == HYBRID_TRACKS and ids.max() < min(n, m)
    r = motion_fidelity(a, b, "mtbench_hybrid")
    assert r.value == pytest.approx(mtbench_hybrid(a.tolist(), b.tolist(), ids.tolist()), abs=1e-12)


def test_hybrid_is_repeatable_under_its_seed_and_draws_as_torch_randint():
    rng = np.random.default_rng(3)
    a, b = random_tracks(rng, 40, 12), random_tracks(rng, 40, 12)
    first = motion_fidelity(a, b, "mtbench_hybrid").value
    assert motion_fidelity(a, b, "mtbench_hybrid").value == first
    assert motion_fidelity(a, b, "mtbench_hybrid", seed=HYBRID_SEED).value == first
    others = {motion_fidelity(a, b, "mtbench_hybrid", seed=s).value for s in (1, 2, 3)}
    assert first not in others  # the seed is what fixes the draw
    g = torch.Generator().manual_seed(5)
    assert hybrid_indices(40, 30, 5).tolist() == torch.randint(0, 30, (50,), generator=g).tolist()


def test_still_steps_are_finite_where_mtbench_is_nan():
    rng = np.random.default_rng(11)
    a, b = random_tracks(rng, 6, 8), random_tracks(rng, 5, 10)
    a[2, 4] = a[2, 3]  # a still step in a video track: MTBench's row is NaN, so is its mean
    b[1, 6:] = b[1, 5]  # a reference track that stops: every row's maximum is NaN in MTBench
    for form in ("mtbench", "mtbench_hybrid"):
        r = motion_fidelity(a, b, form)
        assert math.isfinite(r.value) and (r.n_static, r.n_static_reference) == (1, 1)
    # the stated rule: a zero vector has cosine 0 with everything, i.e. MTBench's formula with 0/0 read as 0
    with np.errstate(invalid="ignore"):
        am, bm = [np.asarray(x, np.float64) for x in (a, b)]
        ids = mtbench_frame_ids(10, 8)
        bm = bm[:, ids]
        def el(x):
            e = np.concatenate([x[:, :1], np.diff(x, axis=1)], axis=1)
            return np.nan_to_num(e / np.linalg.norm(e, axis=-1, keepdims=True))
        expected = np.einsum("ntc,mtc->nmt", el(am), el(bm)).mean(-1).max(1).mean()
    assert motion_fidelity(a, b, "mtbench").value == pytest.approx(expected, abs=1e-12)
    still = np.repeat(a[:, :1], 8, axis=1)
    assert math.isfinite(motion_fidelity(still, b, "mtbench").value)


def test_identical_tracks_score_one_and_bad_input_is_refused():
    a = random_tracks(np.random.default_rng(1), 4, 6)
    assert motion_fidelity(a, a, "mtbench").value == pytest.approx(1.0, abs=1e-12)
    # MTBench's "distance" averages over every pair of points of the two tracks, so a moving track is at a
    # positive distance from itself and identical videos score below 1 in the hybrid
    assert 0.5 < motion_fidelity(a, a, "mtbench_hybrid").value < 1.0
    assert not motion_fidelity(a, a[:0], "mtbench").defined
    with pytest.raises(ValueError, match="T ≥ 2"):
        motion_fidelity(a[:, :1], a, "mtbench")
    bad = a.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        motion_fidelity(bad, a, "mtbench")


def test_metric_on_videos_of_different_lengths():
    ref = moving_square(12, 48, 64, vx=2.0, vy=0.5, seed=1)
    same, opposite = moving_square(9, 48, 64, vx=2.0, vy=0.5, seed=2), moving_square(9, 48, 64, vx=-2.0, vy=-0.5,
                                                                                       seed=2)
    metric = MTBenchTrackMetric()
    good, details = metric.score(Sample(same, "p", reference=ref))
    bad, _ = metric.score(Sample(opposite, "p", reference=ref))
    assert set(good) == set(MTBenchTrackMetric.fields)
    for field in MTBenchTrackMetric.fields:
        lo, hi = MTBenchTrackMetric.fields[field].range
        assert lo <= bad[field] < good[field] <= hi
    assert details["tracks_mtbench_counts"]["n_tracks"] > 0
    spec = metric.spec()
    assert spec["hybrid"]["seed"] == HYBRID_SEED and "linspace" in spec["lengths"]
    assert spec["tracker"]["frames"] == "all frames of each video"
    assert TrackMotionMetric().spec()["forms"] == {"motion_fidelity": "symmetric", "motion_fidelity_dmt": "dmt"}
    assert not MTBenchTrackMetric.wanted(None, {}) and MTBenchTrackMetric.wanted(None, {"mtbench": True})


def test_tracker_option_takes_mtbench_grid(monkeypatch, tmp_path):
    from eval.errors import UserError
    from eval.metrics.tracks import tracker_from_option

    assert isinstance(tracker_from_option("lk", "cpu"), LKTracker)
    assert tracker_from_option("lk", "cpu") is tracker_from_option("lk", "cpu")  # shared by both tracks metrics
    for bad in ("lk:5", "cotracker:cotracker3_offline:x", "cotracker:cotracker3_offline:1", "sift"):
        with pytest.raises(UserError, match="expected lk or cotracker"):
            tracker_from_option(bad, "cpu")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(UserError, match="no CoTracker checkout"):
        tracker_from_option("cotracker:cotracker3_offline:50", "cpu")


def test_both_tracks_metrics_track_each_video_once_when_lengths_agree():
    class Counting(LKTracker):
        calls = 0

        def track(self, frames, num, size):
            Counting.calls += 1
            return super().track(frames, num, size)

    tracker = Counting()
    ref, video = moving_square(8, 48, 64, vx=2.0, seed=1), moving_square(8, 48, 64, vx=2.0, seed=2)
    sample = Sample(video, "p", reference=ref)
    alone = TrackMotionMetric(LKTracker()).score(Sample(video, "p", reference=ref))[0]
    assert TrackMotionMetric(tracker).score(sample)[0] == alone  # the tracks metric's values are unchanged
    MTBenchTrackMetric(tracker).score(sample)
    assert Counting.calls == 2
    MTBenchTrackMetric(tracker).score(Sample(video[:6], "p", reference=ref))
    assert Counting.calls == 4


def test_mask_box_is_mtbench_slicing_and_limits_both_videos_tracks():
    from eval.metrics.tracks import in_box, mask_box

    mask = np.zeros((40, 60), bool)
    mask[10:21, 5:31] = True  # nonzero rows 10..20, columns 5..30
    box = mask_box(mask)
    assert box == (10, 20, 5, 30, 40, 60)  # MTBench: box_mask[minx:maxx, miny:maxy], the last row/column out
    assert mask_box(np.zeros((4, 4), bool)) is None
    pts = np.array([[5.0, 10.0], [29.9, 19.9], [30.0, 15.0], [10.0, 20.0], [4.9, 12.0]])
    assert in_box(pts, (40, 60), box).tolist() == [True, True, False, False, False]
    assert in_box(pts * 2, (80, 120), box).tolist() == [True, True, False, False, False]  # scaled to the mask

    ref = moving_square(8, 48, 64, vx=2.0, seed=1)
    video = moving_square(8, 48, 64, vx=2.0, seed=2)
    square = np.zeros((48, 64), bool)
    square[12:36, 16:48] = True
    whole, _ = MTBenchTrackMetric().score(Sample(video, "p", reference=ref))
    boxed, details = MTBenchTrackMetric().score(Sample(video, "p", reference=ref, reference_mask=square))
    assert details["tracks_mtbench_box"] == [12, 35, 16, 47]
    counts = details["tracks_mtbench_counts"]
    lk = LKTracker()
    h, w = 96, 128
    inside = in_box(lk.grid_points((h, w)), (h, w), mask_box(square)).sum()
    assert 0 < counts["n_tracks"] <= inside < lk.grid ** 2
    assert boxed != whole
    empty, _ = MTBenchTrackMetric().score(Sample(video, "p", reference=ref, reference_mask=~np.ones_like(square)))
    assert all(isinstance(v, Exception) and "empty" in str(v) for v in empty.values())
