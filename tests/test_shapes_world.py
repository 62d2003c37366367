"""The shapes world: deterministic generation, the caption grammar, and the oracle metrics checked against the
generator's ground truth."""

import math
from dataclasses import replace

import numpy as np
import pytest

from eval.errors import MetricUndefined
from eval.metrics import Sample
from eval.record import Record
from eval.metrics.oracle import OracleMetric, classify_shape, largest_region, object_track, palette_labels
from eval.shapes.world import BACKGROUNDS, COLOURS, MOTIONS, SHAPES, _PATHS, Object, Scene, parse_caption, random_scene, render


def test_generation_is_deterministic_by_seed():
    a = render(random_scene(np.random.default_rng(7)), 15, 32)
    b = render(random_scene(np.random.default_rng(7)), 15, 32)
    c = render(random_scene(np.random.default_rng(8)), 15, 32)
    assert np.array_equal(a.frames, b.frames) and a.truth == b.truth
    assert not np.array_equal(a.frames, c.frames)


@pytest.mark.parametrize("name", list(MOTIONS))
def test_reversed_motions_are_their_partners_played_backwards(name):
    rev = MOTIONS[name].reverse
    assert MOTIONS[rev].reverse == name
    for t in np.linspace(0, 1, 9):
        np.testing.assert_allclose(_PATHS[rev](t), _PATHS[name](1 - t), atol=1e-9)


def test_captions_parse_back_for_every_motion_and_two_objects():
    rng = np.random.default_rng(0)
    for name in MOTIONS:
        for _ in range(3):
            scene = random_scene(rng, motions=[name], two_objects=0.5)
            parsed = parse_caption(scene.caption())
            assert parsed == {"objects": [(o.colour, o.shape) for o in scene.objects], "motion": name,
                              "background": scene.background}, scene.caption()
            inv = parse_caption(scene.invariant_caption())
            assert inv["objects"] == [(None, o.shape) for o in scene.objects] and inv["background"] is None
    assert parse_caption("A Red circle is   moving to the right on a black background.")["objects"] == [("red", "circle")]
    assert parse_caption("a cat is roaring") is None
    assert Scene((Object("circle", "orange"),), "black", "fall").caption() == "an orange circle is falling on a black background"


def test_oracle_tracks_match_ground_truth_positions():
    rng = np.random.default_rng(3)
    errors = []
    for _ in range(30):
        scene = random_scene(rng, two_objects=0.0)
        r = render(scene, 15, 32)
        track = object_track(r.frames, scene.objects[0].colour)
        truth = np.array([[s[0]["x"], s[0]["y"]] for s in r.truth])
        inside = (truth > 0.1).all(1) & (truth < 0.9).all(1)  # objects cut by the frame edge shift their centroid
        errors.append(np.abs(track[inside, :2] - truth[inside]).max())
    assert max(errors) < 1.5 / 32  # within 1.5 pixels


def test_shape_classifier_accuracy_on_ground_truth():
    rng = np.random.default_rng(4)
    right = total = 0
    for _ in range(60):
        scene = random_scene(rng, two_objects=0.0)
        r = render(scene, 15, 32)
        for frame, state in zip(r.frames, r.truth):
            region = largest_region(palette_labels(frame) == list(COLOURS).index(state[0]["colour"]))
            if region is None or region.sum() < 12:  # shrunk or cut by the frame edge
                continue
            total += 1
            right += classify_shape(region) == state[0]["shape"]
    assert right / total >= 0.95, right / total


def test_oracle_appearance_on_rendered_videos_and_wrong_prompts():
    metric = OracleMetric()
    rng = np.random.default_rng(5)
    good, wrong_colour, wrong_bg = [], [], []
    for _ in range(20):
        scene = random_scene(rng, two_objects=0.0)
        frames = render(scene, 15, 32).frames
        good.append(metric.score(Sample(frames, scene.caption()))[0]["oracle_appearance"])
        other = next(c for c in COLOURS if c != scene.objects[0].colour and c != "white")
        recoloured = replace(scene, objects=(replace(scene.objects[0], colour=other),))
        wrong_colour.append(metric.score(Sample(frames, recoloured.caption()))[0]["oracle_appearance"])
        other_bg = "black" if scene.background != "black" else "gray"
        wrong_bg_caption = replace(scene, background=other_bg).caption()
        wrong_bg.append(metric.score(Sample(frames, wrong_bg_caption))[0]["oracle_appearance"])
    assert np.mean(good) >= 0.97
    assert np.mean(wrong_colour) <= 0.34 + 1e-9  # only the background check can pass
    assert np.mean(wrong_bg) <= 0.67 + 0.05


def test_oracle_reads_a_texture_only_where_both_its_colours_show():
    """A plain field near one colour of a texture (the cascade draws "black" as about (25, 34, 41), nearer the
    striped texture's dark stripe than black) is its nearest plain background, not half a texture; rendered
    textures, even noisy, stay textures."""
    metric = OracleMetric()
    rng = np.random.default_rng(3)
    for background in BACKGROUNDS:
        scene = Scene((Object("circle", "red"),), background, "right")
        frames = render(scene, 3, 32).frames
        noisy = np.clip(frames + rng.normal(0, 6, frames.shape), 0, 255).astype(np.uint8)
        assert metric.score(Sample(noisy, scene.caption()))[0]["oracle_appearance"] == pytest.approx(1.0), background
    for rgb, plain in [((25, 34, 41), "black"), ((35, 35, 35), "black"), ((85, 85, 85), "gray"),
                       ((30, 60, 50), "black"), ((65, 100, 90), "gray")]:
        field = np.tile(np.array(rgb, np.uint8), (2, 32, 32, 1))
        field[:, 12:20, 12:20] = COLOURS["red"]
        for background in BACKGROUNDS:
            score = metric.score(Sample(field, f"a red square is falling on a {background} background"))[0]
            assert score["oracle_appearance"] == pytest.approx(1.0 if background == plain else 2 / 3), (rgb, background)


def test_oracle_motion_same_reversed_static_and_undefined(tmp_path):
    from eval.video import Video, read_video, write_video

    metric = OracleMetric()
    ref_scene = Scene((Object("circle", "red", 0.18),), "black", "zigzag_left")
    write_video(tmp_path / "ref.mp4", Video(render(ref_scene, 15, 64).frames, 8.0))
    ref = read_video(tmp_path / "ref.mp4").frames  # through H.264, as benchmark references are stored
    same = Scene((Object("star", "yellow", 0.16),), "gray", "zigzag_left", (0.45, 0.55))
    def score(s):
        return metric.score(Sample(render(s, 15, 32).frames, s.caption(), ref, ref_scene.caption()))[0]
    assert score(same)["oracle_motion"] > 0.9
    assert score(replace(same, motion="zigzag_right"))["oracle_motion"] < 0.1
    assert score(replace(same, motion="rotate_cw"))["oracle_motion"] < 0.1  # the object stays put
    rot = Scene((Object("square", "red", 0.18),), "black", "rotate_cw")
    rotating = render(rot, 15, 32).frames
    out = metric.score(Sample(rotating, rot.caption(), rotating, rot.caption()))[0]
    assert isinstance(out["oracle_motion"], MetricUndefined)
    values = metric.score(Sample(render(same, 15, 32).frames, "a cat is walking", ref))[0]
    assert all(isinstance(v, MetricUndefined) for v in values.values())


def test_oracle_motion_without_reference_prompt_finds_any_object():
    ref_scene = Scene((Object("triangle", "green", 0.18),), "beige", "fall")
    gen = Scene((Object("circle", "blue", 0.17),), "navy", "fall")
    ref = render(ref_scene, 15, 64).frames
    assert math.isclose(
        OracleMetric().score(Sample(render(gen, 15, 32).frames, gen.caption(), ref))[0]["oracle_motion"],
        OracleMetric().score(Sample(render(gen, 15, 32).frames, gen.caption(), ref,
                                    ref_scene.caption()))[0]["oracle_motion"])


def test_every_shape_and_colour_is_in_the_grammar():
    for shape in SHAPES:
        for colour in COLOURS:
            text = f"a {colour} {shape} is growing on a gray background".replace("a orange", "an orange")
            assert parse_caption(text)["objects"] == [(colour, shape)]


def scored(prompt: str, seed: int = 0, **metrics) -> Record:
    return Record(key=f"{prompt}-{seed}", method="m", prompt=prompt, video=f"{prompt}.mp4", seed=seed,
                  metrics=metrics)


def test_validity_report_ranks_metrics_against_their_oracles():
    from scipy.stats import spearmanr

    from eval.validity import validity

    rng = np.random.default_rng(0)
    oracle = rng.random(40)
    records = [scored(f"p{i}", oracle_appearance=float(o), text_alignment=float(o ** 2), clip_score=float(-o),
                      oracle_motion=float(m), motion_epe=None)
               for i, (o, m) in enumerate(zip(oracle, rng.random(40)))]
    table = validity(records, resamples=200).set_index("metric")
    assert table.loc["text_alignment", "spearman"] == pytest.approx(1.0)
    assert table.loc["clip_score", "spearman"] == pytest.approx(-1.0)
    assert table.loc["text_alignment", "n"] == 40 and table.loc["motion_epe", "n"] == 0
    assert np.isnan(table.loc["motion_epe", "spearman"])
    noisy = oracle + rng.normal(0, 0.3, 40)
    records = [scored(f"p{i}", oracle_appearance=float(o), text_alignment=float(x))
               for i, (o, x) in enumerate(zip(oracle, noisy))]
    row = validity(records, resamples=300).set_index("metric").loc["text_alignment"]
    assert row["spearman"] == pytest.approx(spearmanr(oracle, noisy).statistic)
    assert row["ci_low"] < row["spearman"] < row["ci_high"]


def test_validity_interval_resamples_prompts_not_videos():
    """Four identical replicate videos per prompt carry no more evidence than one: the interval must be the
    one-video-per-prompt interval (Spearman is unchanged by replicating every point), not narrower."""
    from eval.validity import validity

    rng = np.random.default_rng(1)
    oracle = rng.random(12)
    noisy = oracle + rng.normal(0, 0.3, 12)
    one = [scored(f"p{i}", oracle_appearance=float(o), text_alignment=float(x))
           for i, (o, x) in enumerate(zip(oracle, noisy))]
    four = [replace(r, seed=s) for r in one for s in range(4)]
    a, b = (validity(r, resamples=300).set_index("metric").loc["text_alignment"] for r in (one, four))
    assert (b["n"], b["n_units"], a["n_units"]) == (48, 12, 12)
    assert (b["spearman"], b["ci_low"], b["ci_high"]) == pytest.approx((a["spearman"], a["ci_low"], a["ci_high"]))
