"""Motion fidelity on point tracks: both forms against independent float64 transcriptions of their formulas,
the static-track rule, the LK tracker against the shapes world's ground truth, and the CoTracker tracker's
error when nothing is installed."""

import math

import numpy as np
import pytest

from eval.errors import MetricUndefined, UserError
from eval.metrics import Sample
from eval.metrics.tracks import CoTrackerTracker, LKTracker, TrackMotionMetric, motion_fidelity, score_tracks
from eval.shapes.world import Object, Scene, render


def similarity(a, b):
    """S[n][m] = mean over t of the cosine of step t of track n of a and of track m of b (plain loops)."""
    def unit(tr, t):
        dx, dy = float(tr[t + 1][0]) - float(tr[t][0]), float(tr[t + 1][1]) - float(tr[t][1])
        n = math.hypot(dx, dy)
        return dx / n, dy / n

    steps = len(a[0]) - 1
    s = [[0.0] * len(b) for _ in a]
    for n in range(len(a)):
        for m in range(len(b)):
            for t in range(steps):
                (ux, uy), (vx, vy) = unit(a[n], t), unit(b[m], t)
                s[n][m] += (ux * vx + uy * vy) / steps
    return s


def official_dmt(a, b):
    """The published code: S minus the identity matrix (on the overlapping indices), mean of row maxima."""
    s = similarity(a, b)
    return sum(max(s[n][m] - (1.0 if n == m else 0.0) for m in range(len(b))) for n in range(len(a))) / len(a)


def two_sided(a, b):
    s = similarity(a, b)
    rows = sum(max(row) for row in s) / len(a)
    cols = sum(max(s[n][m] for n in range(len(a))) for m in range(len(b))) / len(b)
    return (rows + cols) / 2


def random_tracks(rng, n, t):
    return np.cumsum(rng.normal(0, 2, (n, t, 2)), axis=1).astype(np.float32) + 50


SIZES = [(5, 5, 4), (7, 3, 6), (3, 9, 2), (12, 12, 16), (1, 4, 8)]


@pytest.mark.parametrize("n,m,t", SIZES)
def test_dmt_form_reproduces_the_official_formula(n, m, t):
    rng = np.random.default_rng(n * 100 + m * 10 + t)
    a, b = random_tracks(rng, n, t), random_tracks(rng, m, t)
    r = motion_fidelity(a, b, "dmt")
    assert r.value == pytest.approx(official_dmt(a, b), abs=1e-12)
    assert (r.n_tracks, r.n_reference, r.n_static, r.n_static_reference) == (n, m, 0, 0)


@pytest.mark.parametrize("n,m,t", SIZES)
def test_symmetric_form_matches_its_definition(n, m, t):
    rng = np.random.default_rng(n * 100 + m * 10 + t + 1)
    a, b = random_tracks(rng, n, t), random_tracks(rng, m, t)
    assert motion_fidelity(a, b).value == pytest.approx(two_sided(a, b), abs=1e-12)


def test_static_tracks_are_left_out_and_counted():
    rng = np.random.default_rng(3)
    a, b = random_tracks(rng, 6, 8), random_tracks(rng, 5, 8)
    still_a = np.concatenate([a, np.full((2, 8, 2), 10.0, np.float32)])  # never moves
    paused = b[:1].copy()
    paused[0, 4] = paused[0, 3]  # stands still for one step: its direction there is undefined
    still_b = np.concatenate([b, paused])
    for form in ("symmetric", "dmt"):
        r = motion_fidelity(still_a, still_b, form)
        assert np.isfinite(r.value) and (r.n_static, r.n_static_reference) == (2, 1)
        assert (r.n_tracks, r.n_reference) == (6, 5)
    # appended static tracks change nothing, the identity quirk included (it follows the original indices)
    assert motion_fidelity(still_a, still_b, "dmt").value == pytest.approx(official_dmt(a, b), abs=1e-12)
    assert motion_fidelity(still_a, still_b).value == pytest.approx(two_sided(a, b), abs=1e-12)


def test_nothing_moving_is_undefined_with_a_reason():
    rng = np.random.default_rng(4)
    still = np.full((3, 5, 2), 7.0)
    r = motion_fidelity(still, random_tracks(rng, 4, 5), "dmt")
    assert isinstance(r.value, MetricUndefined) and not r.defined
    assert "video has no moving track (3 tracks, all static)" in str(r.value) and r.n_static == 3
    r = motion_fidelity(random_tracks(rng, 4, 5), np.zeros((0, 5, 2)))
    assert str(r.value) == "the reference has no track"


def test_bad_shapes_are_refused():
    rng = np.random.default_rng(5)
    with pytest.raises(ValueError, match="same frame count"):
        motion_fidelity(random_tracks(rng, 3, 5), random_tracks(rng, 3, 6))
    with pytest.raises(ValueError, match="form must be"):
        motion_fidelity(random_tracks(rng, 3, 5), random_tracks(rng, 3, 5), "paper")


def test_identical_tracks_score_one():
    a = random_tracks(np.random.default_rng(6), 30, 10)
    assert motion_fidelity(a, a).value == pytest.approx(1.0, abs=1e-12)
    assert motion_fidelity(a, a, "dmt").value < 1.0  # the identity quirk takes away each track's own match


@pytest.mark.parametrize("shape,motion", [("square", "right"), ("star", "circle_cw"), ("circle", "down_left")])
def test_lk_follows_the_object_within_a_pixel(shape, motion):
    r = render(Scene((Object(shape, "red"),), "gray", motion), 15, 64)
    tracks = LKTracker(height=64).track(r.frames, 15, (64, 64))
    centre = np.array([[s[0]["x"], s[0]["y"]] for s in r.truth]) * 64
    on_object = np.linalg.norm(tracks[:, 0] - centre[0], axis=1) < 0.8 * r.truth[0][0]["radius"] * 64
    assert on_object.sum() >= 10
    moved, truth = tracks[on_object] - tracks[on_object, :1], centre - centre[:1]
    assert np.linalg.norm(moved - truth, axis=-1).max() < 1.0  # every object point, every frame
    assert np.linalg.norm(moved.mean(0) - truth, axis=-1).max() < 0.5


def test_metric_ranks_same_motion_above_opposite_motion():
    ref = render(Scene((Object("square", "red"),), "gray", "right"), 15, 64).frames
    same = render(Scene((Object("star", "yellow"),), "navy", "right", (0.45, 0.55)), 12, 80).frames
    opposite = render(Scene((Object("star", "yellow"),), "navy", "left"), 12, 80).frames
    metric = TrackMotionMetric()
    values, details = metric.score(Sample(same, "", ref))
    worse, _ = metric.score(Sample(opposite, "", ref))
    assert values["motion_fidelity"] > 0.8 > worse["motion_fidelity"]
    assert values["motion_fidelity_dmt"] > worse["motion_fidelity_dmt"]
    assert all(lo <= values[k] <= hi for k, (lo, hi) in ((k, f.range) for k, f in metric.fields.items()))
    assert details["tracks_size"] == [96, 96] and details["tracks_frames"] == 12
    assert 0 < len(details["tracks"]) <= 64 and len(details["tracks"][0]) == 12
    assert details["tracks_counts"]["n_tracks"] > 0
    assert score_tracks(ref, ref).value == pytest.approx(1.0)
    spec = metric.spec()["tracker"]
    assert {"method", "grid", "window", "levels", "fb_threshold_px", "opencv", "size", "frames"} <= set(spec)


def test_a_still_video_scores_zero_a_still_reference_or_one_frame_is_undefined():
    ref = render(Scene((Object("square", "red"),), "gray", "right"), 8, 64).frames
    still = np.repeat(ref[:1], 8, axis=0)
    values, details = TrackMotionMetric().score(Sample(still, "", ref))
    assert values == {"motion_fidelity": 0.0, "motion_fidelity_dmt": 0.0}
    assert details["tracks_counts"]["n_tracks"] == 0 and details["tracks_counts"]["n_reference"] > 0
    values, _ = TrackMotionMetric().score(Sample(ref, "", still))
    assert all(isinstance(v, MetricUndefined) and "reference" in str(v) for v in values.values())
    values, details = TrackMotionMetric().score(Sample(ref[:1], "", ref))
    assert "at least 2 frames" in str(values["motion_fidelity"]) and details == {}


def test_cotracker_without_checkout_or_weights_is_one_clear_line(tmp_path):
    with pytest.raises(UserError) as e:
        CoTrackerTracker(repo=tmp_path / "co-tracker")
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "co-tracker") in msg and "git clone" in msg
    (tmp_path / "co-tracker").mkdir()
    (tmp_path / "co-tracker" / "hubconf.py").write_text("")
    with pytest.raises(UserError) as e:
        CoTrackerTracker(repo=tmp_path / "co-tracker", checkpoint=tmp_path / "cotracker2.pth")
    msg = str(e.value)
    assert "\n" not in msg and "cotracker2.pth not found" in msg and "huggingface.co" in msg
