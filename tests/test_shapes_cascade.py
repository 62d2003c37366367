"""The shipped shapes world: weights within budget, the `shapes` backbone and benchmark, the training command,
and eval.run end to end on it (vmc, tav, t2v with few steps)."""

import json
import shutil

import numpy as np
import pytest
import yaml
from safetensors import safe_open
from statsmodels.stats.proportion import proportion_confint

from conftest import run_main, shapes_subset
from eval.manifest import load_benchmark
from eval.metrics import Sample
from eval.run import main as run_main_cli
from eval.rundir import RunFolder
from eval.shapes.make_benchmark import build
from eval.shapes.world import MOTIONS, parse_caption
from eval.shapes.train_clip import CHECKPOINT
from eval.video import read_video
from vmc.backbones import SHAPES_DIR, resolve_backbone
from vmc.shapes.data import HELD_OUT, held_out_motions

needs_weights = pytest.mark.skipif(not (SHAPES_DIR / "cascade.json").is_file() or not CHECKPOINT.is_file(),
                                   reason="shapes-world weights not built")


@needs_weights
def test_shipped_weights_are_fp16_and_within_budget():
    cascade = [p for p in SHAPES_DIR.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in cascade) <= 40e6
    assert CHECKPOINT.stat().st_size <= 10e6
    for path in [*SHAPES_DIR.rglob("*.safetensors"), CHECKPOINT]:
        with safe_open(str(path), "pt") as f:
            assert {str(f.get_slice(k).get_dtype()) for k in f.keys()} == {"F16"}, path


@needs_weights
def test_shapes_backbone_runs_its_three_stages():
    import torch

    from vmc.backbones.show1 import Show1Cascade

    backbone = resolve_backbone("shapes")
    assert backbone.stages == ("keyframes", "interp", "sr1")
    backbone.settings.keyframe_steps = backbone.settings.interp_steps = backbone.settings.sr1_steps = 2
    out = Show1Cascade(backbone, "cpu").run("a red circle is falling on a black background", seed=0)
    assert out["keyframes"].shape == (1, 3, 8, 16, 16)
    assert out["interp"].shape == (1, 3, 15, 16, 16)
    assert out["sr1"].shape == (1, 3, 15, 32, 32)
    assert torch.isfinite(out["sr1"]).all()


@pytest.mark.parametrize("split, name, targets", [("test", "shapes", 6), ("dev", "shapes-dev", 3)])
def test_benchmark_is_reproducible_from_the_code(tmp_path, split, name, targets):
    shipped = load_benchmark(name)
    assert len(shipped.cases) >= 6 and all(len(c.target_prompts) == targets for c in shipped.cases)
    for case in shipped.cases:  # every target changes colour and background, and keeps the motion
        ref = parse_caption(case.meta["reference_prompt"])
        for prompt in case.target_prompts:
            t = parse_caption(prompt)
            assert t["motion"] == ref["motion"] and t["background"] != ref["background"]
            assert t["objects"][0][0] != ref["objects"][0][0]
    notes = [c.meta["note"] for c in shipped.cases]
    assert sum("held out" in n for n in notes) >= 2 and sum("reversal" in n for n in notes) >= 2
    assert shipped.metrics["oracle"] == "shapes"
    path = build(tmp_path, split)
    assert path.read_text() == shipped.path.read_text()
    for case in shipped.cases:
        a, b = read_video(case.reference).frames, read_video(tmp_path / name / f"{case.id}.mp4").frames
        assert a.shape == b.shape == (15, 64, 64, 3)
        assert np.abs(a.astype(int) - b).mean() < 1.0


def test_dev_split_shares_no_scene_or_target_with_the_benchmark():
    test, dev = load_benchmark("shapes"), load_benchmark("shapes-dev")
    assert [c.meta["motion"] for c in dev.cases] == [c.meta["motion"] for c in test.cases]
    prompts = lambda b: {c.meta["reference_prompt"] for c in b.cases} | {p for c in b.cases for p in c.target_prompts}
    assert not prompts(test) & prompts(dev)


@needs_weights
def test_benchmark_holds_out_what_the_shipped_keyframes_never_saw():
    """The benchmark's notes say which references text cannot name to the model: they must be the motions the
    shipped keyframe stage was never trained on, or a retrain would quietly turn the benchmark into another."""
    held_out = set(held_out_motions(resolve_backbone("shapes")))
    for name in ("shapes", "shapes-dev"):
        cases = load_benchmark(name).cases
        assert {c.meta["motion"] for c in cases if "held out" in c.meta["note"]} == held_out
        assert {c.meta["motion"] for c in cases if c.meta["note"] == "trained"}.isdisjoint(held_out)


def test_training_command_writes_a_loadable_cascade(tmp_path, capsys):
    from vmc.shapes.train import main

    work, out = tmp_path / "work", tmp_path / "cascade"
    args = ["--work", work, "--steps", "1", "--batch-size", "2", "--export", out, "--device", "cpu",
            "--held-out", "rise, grow"]
    assert run_main(main, *args, capsys=capsys)[0] == 0
    backbone = resolve_backbone(str(out))
    assert backbone.stages == ("keyframes", "interp", "sr1") and backbone.adaptation_for("tav")["steps"] > 0
    training = json.loads((out / "cascade.json").read_text())["training"]
    assert training["steps"] == {"keyframes": 1, "interp": 1, "sr1": 1}
    assert training["held_out"] == {stage: ["rise", "grow"] for stage in ("keyframes", "interp", "sr1")}
    assert held_out_motions(backbone) == ("rise", "grow")
    for folder in ("show-1-base", "show-1-interpolation", "show-1-sr1"):  # a fresh run learns v
        assert json.loads((out / folder / "scheduler" / "scheduler_config.json").read_text())["prediction_type"] \
            == "v_prediction"
    import torch

    from vmc.backbones.show1 import Show1Cascade

    backbone.settings.keyframe_steps = backbone.settings.interp_steps = backbone.settings.sr1_steps = 2
    video = Show1Cascade(backbone, "cpu").run("a red circle is falling on a black background", seed=0)
    assert video["sr1"].shape == (1, 3, 15, 32, 32) and torch.isfinite(video["sr1"]).all()

    before = torch.load(work / "keyframes.pt", weights_only=False)["ema"]["text"]
    code, _, err = run_main(main, "--work", work, "--stages", "keyframes", "--steps", "2", capsys=capsys)
    assert code == 2 and "this run holds out rise, grow; resuming it with --held-out zigzag_left" in err
    code, _, err = run_main(main, "--work", work, "--held-out", "rise,sideways", capsys=capsys)
    assert code == 2 and "--held-out: unknown motion(s) sideways" in err
    code, _, err = run_main(main, "--work", work, "--held-out", ",".join(MOTIONS), capsys=capsys)
    assert code == 2 and "--held-out: that leaves no motion to train on" in err
    args = ["--work", work, "--stages", "keyframes", "--steps", "3", "--batch-size", "2", "--freeze-text",
            "--held-out", "grow,rise"]
    assert run_main(main, *args, capsys=capsys)[0] == 0
    after = torch.load(work / "keyframes.pt", weights_only=False)
    assert after["step"] == 3 and after["text_frozen"]
    for k, v in before.items():  # frozen at its EMA: the encoder the other stages condition on
        assert torch.equal(after["ema"]["text"][k], v) and torch.equal(after["model"]["text"][k], v)
    code, _, err = run_main(main, "--work", work, "--stages", "keyframes,upscale", capsys=capsys)
    assert code == 2 and "unknown stage(s) upscale" in err

    packed = tmp_path / "packed"  # compact copies resume, with the learning rate warmed up again
    assert run_main(main, "--work", work, "--stages", "", "--pack", packed, capsys=capsys)[0] == 0
    small = torch.load(packed / "keyframes.pt", weights_only=False)
    assert small["opt"]["state"] == {} and small["step"] == 3
    assert all(v.dtype == torch.float16 for v in small["ema"]["unet"].values() if v.is_floating_point())
    from vmc.shapes.train import Stage, load_text_encoder

    held_out = ("rise", "grow")
    stage = Stage("interp", packed, torch.device("cpu"), 1e-3, load_text_encoder(packed, "cpu"), held_out=held_out)
    assert stage.step == stage.warm_from == 1
    code, _, err = run_main(main, "--work", work, "--stages", "", "--pack", work, capsys=capsys)
    assert code == 2 and "--pack must differ from --work" in err
    code, _, err = run_main(main, "--work", tmp_path / "none", "--stages", "", "--pack", packed, capsys=capsys)
    assert code == 2 and "no checkpoint to pack" in err
    older = torch.load(packed / "sr1.pt", weights_only=False)  # a checkpoint from before v-prediction: ε
    del older["prediction_type"]
    torch.save(older, packed / "sr1.pt")
    assert Stage("sr1", packed, torch.device("cpu"), 1e-3, load_text_encoder(packed, "cpu"),
                 held_out=held_out).prediction == "epsilon"
    switched = Stage("sr1", packed, torch.device("cpu"), 1e-3, load_text_encoder(packed, "cpu"),
                     prediction="v_prediction", held_out=held_out)
    assert switched.prediction == switched.noise.config.prediction_type == "v_prediction"
    assert switched.objective_since == switched.warm_from == 1
    saved = torch.load(packed / "interp.pt", weights_only=False)["ema"]["unet"]
    torch.testing.assert_close(stage.ema["unet"].state_dict(), {k: v.float() if v.is_floating_point() else v
                                                                for k, v in saved.items()})


@needs_weights
def test_eval_run_vmc_tav_t2v_inversion_on_the_shapes_benchmark(tmp_path):
    fast = _fast_copy(tmp_path)
    meta = json.loads((fast / "cascade.json").read_text())
    for method in ("vmc", "tav"):
        meta[method].update(steps=2, inversion_steps=2)
    (fast / "cascade.json").write_text(json.dumps(meta))
    out = tmp_path / "run"
    bench = shapes_subset(tmp_path / "zigzag.yaml", ["zigzag_left"], prompts=3)
    args = ["--methods", f"vmc:{fast},tav:{fast},t2v:{fast},inversion:{fast}", "--benchmark", bench, "--out", out,
            "--device", "cpu"]
    assert run_main(run_main_cli, *args)[0] == 0
    records = RunFolder(out).records()
    assert len(records) == 12
    trained = {r.method: r.protocol["trained_parameters"] for r in records}
    assert trained["t2v-shapes"] == trained["inversion-shapes"] == 0
    assert 0 < trained["vmc-shapes"] < trained["tav-shapes"]  # tav adds the spatial queries and all temporal attention
    import pandas as pd

    summary = pd.read_csv(out / "summary.csv")
    facts = summary[summary.metric == "protocol.trained_parameters"].set_index("method")["mean"]
    assert facts["vmc-shapes"] == trained["vmc-shapes"]
    assert set(summary.metric) >= {"protocol.train_s", "protocol.generate_s", "oracle_motion"}
    for r in records:
        assert r.num_frames == 15 and r.size == [32, 32]
        assert {"oracle_appearance", "oracle_motion", "text_alignment"} <= set(r.metrics)
    tav = json.loads(next((out / "cache").glob("tav-shapes/zigzag_left/*/adapter.json")).read_text())
    assert tav["rule"] == "tav" and tav["loss"] == "eps_mse" and tav["method"] == "tav"
    inversion = out / "cache" / "inversion-shapes" / "zigzag_left"
    assert list(inversion.glob("*/inverted.safetensors")) and not list(inversion.glob("*/adapter.json"))
    run = json.loads((out / "run.json").read_text())
    assert run["methods"]["inversion-shapes"]["trained_parameters"] == 0
    assert "oracle" in run["metric_specs"] and run["benchmark"]["name"] == "shapes"
    from eval.validity import main as validity_main

    assert run_main(validity_main, out)[0] == 0
    assert (out / "validity.csv").is_file()


def _fast_copy(tmp_path):
    """The shipped cascade with few sampling steps (the weights unchanged)."""
    fast = tmp_path / "shapes"
    shutil.copytree(SHAPES_DIR, fast)
    meta = json.loads((fast / "cascade.json").read_text())
    meta["settings"].update(keyframe_steps=2, interp_steps=2, sr1_steps=2)
    (fast / "cascade.json").write_text(json.dumps(meta))
    return fast


@needs_weights
def test_evaluate_reports_the_appearance_after_each_stage(tmp_path, capsys):
    from vmc.shapes.evaluate import main as evaluate_main

    out = tmp_path / "report.json"
    code, stdout, _ = run_main(evaluate_main, "--backbone", _fast_copy(tmp_path), "--samples", "2", "--out", out,
                               "--device", "cpu", capsys=capsys)
    report = json.loads(out.read_text())
    assert code == 0 and "after each stage (earlier stages enlarged to the final size): keyframes" in stdout
    assert list(report["stage_appearance"]) == ["keyframes", "interp", "sr1"] and len(report["rows"]) == 2
    assert report["stage_appearance"]["sr1"] == pytest.approx(report["oracle_appearance"])
    assert "motion recognised after each stage: keyframes" in stdout
    assert report["stage_motion_recognised"]["sr1"] == pytest.approx(report["motion_recognised"])
    recognised = sum(row["motion_recognised"] for row in report["rows"])
    assert report["motion_recognised_ci95"] == pytest.approx(proportion_confint(recognised, 2, method="wilson"))
    assert "95% Wilson interval" in stdout
    for row in report["rows"]:
        assert row["oracle_appearance"] == row["stage_appearance"]["sr1"]
        assert all(0 <= v <= 1 for v in row["stage_appearance"].values())
        assert row["motion_recognised"] == row["stage_motion_recognised"]["sr1"]


@pytest.mark.parametrize("k,n", [(23, 36), (0, 36), (36, 36), (7, 10)])
def test_wilson_interval_matches_statsmodels(k, n):
    from vmc.shapes.evaluate import wilson95

    assert wilson95(k, n) == pytest.approx(proportion_confint(k, n, method="wilson"))


@needs_weights
def test_training_goes_on_from_the_shipped_weights(tmp_path, capsys):
    import torch

    from vmc.shapes.train import main

    shipped = json.loads((SHAPES_DIR / "cascade.json").read_text())["training"]["steps"]
    work, out = tmp_path / "work", tmp_path / "cascade"
    args = ["--work", work, "--stages", "keyframes", "--init", SHAPES_DIR, "--freeze-text",
            "--steps", str(shipped["keyframes"] + 1), "--batch-size", "2", "--reversal-margin", "0.05",
            "--device", "cpu", "--held-out", "zigzag_left,circle_ccw,rise"]
    assert run_main(main, *args, capsys=capsys)[0] == 0
    state = torch.load(work / "keyframes.pt", weights_only=False)
    assert state["step"] == shipped["keyframes"] + 1 and state["prediction_type"] == "v_prediction"
    assert state["opt"]["state"]  # one step taken: moments exist from here on
    with safe_open(SHAPES_DIR / "show-1-base/unet/diffusion_pytorch_model.safetensors", "pt") as f:
        start = {k: f.get_tensor(k).float() for k in f.keys()}
    moved = [k for k, v in state["model"]["unet"].items() if not torch.equal(v, start[k])]
    assert moved and set(state["model"]["unet"]) == set(start)
    args = ["--work", work, "--stages", "interp,sr1", "--init", SHAPES_DIR, "--minutes", "0", "--export", out]
    assert run_main(main, *args, capsys=capsys)[0] == 0  # the other stages as shipped, then exported
    training = json.loads((out / "cascade.json").read_text())["training"]
    assert training["steps"] == {**shipped, "keyframes": shipped["keyframes"] + 1}
    # the shipped keyframe stage never saw rising or growing; this run trains on growing, so what the stage never
    # saw is now the motions left out of both (the other stages, shipped, saw both)
    assert training["held_out"] == {"keyframes": ["zigzag_left", "circle_ccw", "rise"],
                                    "interp": list(HELD_OUT), "sr1": list(HELD_OUT)}
    assert held_out_motions(resolve_backbone("shapes")) == ("zigzag_left", "circle_ccw", "rise", "grow")
    for name in ("show-1-base/text_encoder/model.safetensors",  # frozen: what the other stages condition on
                 "show-1-interpolation/unet/diffusion_pytorch_model.safetensors",
                 "show-1-sr1/unet/diffusion_pytorch_model.safetensors"):
        with safe_open(SHAPES_DIR / name, "pt") as a, safe_open(out / name, "pt") as b:
            assert set(a.keys()) == set(b.keys()) and all(torch.equal(a.get_tensor(k), b.get_tensor(k))
                                                          for k in a.keys()), name
    code, _, err = run_main(main, "--work", tmp_path / "w2", "--init", tmp_path, capsys=capsys)
    assert code == 2 and "--init needs an exported cascade" in err
    code, _, err = run_main(main, "--work", tmp_path / "w3", "--reversal-margin", "-1", capsys=capsys)
    assert code == 2 and "--reversal-margin: -1.0 is negative" in err and not (tmp_path / "w3").exists()
    code, _, err = run_main(main, "--work", tmp_path / "w4", "--neighbour-share", "1.5", capsys=capsys)
    assert code == 2 and "--neighbour-share: 1.5 is not a share" in err and not (tmp_path / "w4").exists()


def test_reversal_pairs_name_the_reversed_motion_in_the_same_words():
    from vmc.shapes.data import sample_reversal_pairs

    _, captions, wrong = sample_reversal_pairs(np.random.default_rng(1), 40)
    for true, reverse in zip(captions, wrong):
        a, b = parse_caption(true), parse_caption(reverse)
        assert b["motion"] == MOTIONS[a["motion"]].reverse != a["motion"] and b["motion"] not in HELD_OUT
        assert (a["objects"], a["background"]) == (b["objects"], b["background"])


def test_neighbour_share_names_a_line_45_degrees_off_for_straight_lines():
    import math

    from eval.shapes.world import random_scene, render
    from vmc.shapes.data import LINE_RING, sample_reversal_pairs

    def angle(motion):  # of the rendered object's displacement, in degrees
        first, *_, last = render(random_scene(np.random.default_rng(0), motions=[motion], two_objects=0.0), 2, 64).truth
        return math.degrees(math.atan2(last[0]["y"] - first[0]["y"], last[0]["x"] - first[0]["x"]))

    _, captions, wrong = sample_reversal_pairs(np.random.default_rng(2), 60, neighbour=1.0)
    lines = 0
    for true, other in zip(captions, wrong):
        a, b = parse_caption(true), parse_caption(other)
        assert (a["objects"], a["background"]) == (b["objects"], b["background"])
        if a["motion"] in LINE_RING:
            lines += 1
            assert abs((angle(b["motion"]) - angle(a["motion"]) + 180) % 360 - 180) == pytest.approx(45, abs=1)
        else:
            assert b["motion"] == MOTIONS[a["motion"]].reverse
    assert lines >= 10


def test_held_out_motions_stay_out_of_the_training_data():
    from vmc.shapes.data import LINE_RING, sample_clips, sample_reversal_pairs

    held_out = ("rise", "grow", "up")
    _, captions = sample_clips(np.random.default_rng(0), 300, held_out=held_out)
    drawn = {parse_caption(c)["motion"] for c in captions if c}
    assert drawn == set(MOTIONS) - set(held_out)
    _, captions, wrong = sample_reversal_pairs(np.random.default_rng(1), 200, neighbour=1.0, held_out=held_out)
    pairs = [(parse_caption(a)["motion"], parse_caption(b)["motion"]) for a, b in zip(captions, wrong)]
    assert not {m for pair in pairs for m in pair} & set(held_out)
    assert {"fall", "shrink", "down"}.isdisjoint(m for m, _ in pairs)  # their reversals are held out
    # "up" neighbours these two lines: where it would have been drawn, the reversal is named instead
    allowed = {"up_left": {"left", "down_right"}, "up_right": {"right", "down_left"}}
    beside_up = [(m, w) for m, w in pairs if m in allowed]
    assert all(w in allowed[m] for m, w in beside_up)
    assert any(w == MOTIONS[m].reverse for m, w in beside_up) and any(w in LINE_RING[::2] for _, w in beside_up)


@needs_weights
def test_reversal_margin_is_a_hinge_on_the_probes_log_ratio(tmp_path, monkeypatch):
    import torch

    from vmc.shapes.data import keyframe_view, sample_reversal_pairs
    from vmc.shapes.train import REVERSAL, Stage

    monkeypatch.setitem(REVERSAL, "margin", 3.0)  # the shipped weights were trained with it: keep the hinge active

    stage = Stage("keyframes", tmp_path, torch.device("cpu"), 1e-3, freeze_text=True, init=SHAPES_DIR,
                  reversal_weight=1.0)
    stage.unet.eval()  # no dropout in the temporal convolutions, to compare
    margin = stage.reversal_margin(np.random.default_rng(7))
    # recomputed in float64 from the same draws: clips and captions, then the noise seed, then the timesteps
    rng = np.random.default_rng(7)
    n = REVERSAL["clips"]
    clips, captions, wrong = sample_reversal_pairs(rng, n)
    noise = torch.randn(n, 3, 8, 16, 16, generator=torch.Generator().manual_seed(int(rng.integers(2**31)))).double()
    t = rng.integers(REVERSAL["min_t"], 1000, n)
    x0 = keyframe_view(clips).double()
    unet = stage.unet.double()
    a = stage.noise.alphas_cumprod[t].double().view(-1, 1, 1, 1, 1)
    noisy, v = a.sqrt() * x0 + (1 - a).sqrt() * noise, a.sqrt() * noise - (1 - a).sqrt() * x0
    with torch.no_grad():
        losses = [((unet(noisy, torch.from_numpy(t), stage.embed(c, stage.text).double()).sample - v) ** 2)
                  .mean((1, 2, 3, 4)) for c in (captions, wrong)]
    expected = torch.clamp(REVERSAL["margin"] - (losses[1] / losses[0]).log(), min=0).mean()
    assert float(expected) > 0 and float(margin.detach()) == pytest.approx(float(expected), abs=1e-4)
    assert margin.requires_grad


@needs_weights
def test_probe_compares_each_motion_with_its_reversal(tmp_path, capsys):
    import torch

    import vmc.shapes.probe as probe
    from eval.shapes.world import random_scene, render
    from vmc.models import Show1UNet3D
    from vmc.backbones.show1 import Show1Cascade
    from vmc.shapes.data import keyframe_view, to_tensor

    assert "bounce" not in probe.probed_motions(HELD_OUT) and {"right", "fall", "grow"} <= set(
        probe.probed_motions(HELD_OUT))
    assert "grow" not in probe.probed_motions(("grow",))
    code, out, _ = run_main(probe.main, "--clips", "2", "--timesteps", "700,200", "--out", tmp_path / "p.json",
                            "--device", "cpu", "--motions", "right, fall", capsys=capsys)
    assert code == 0 and "right" in out and "t=700" in out
    report = json.loads((tmp_path / "p.json").read_text())
    assert [(r["motion"], r["reverse"]) for r in report["rows"]] == [("right", "left"), ("fall", "rise")]
    # the first motion's t=700 score, recomputed in float64 from the same scenes, noise and captions
    rng = np.random.default_rng(0)
    scenes = [random_scene(rng, motions=["right"], two_objects=0.0) for _ in range(2)]
    noise = torch.randn(2, 3, 8, 16, 16, generator=torch.Generator().manual_seed(int(rng.integers(2**31))))
    x0 = keyframe_view(torch.stack([to_tensor(render(s, 15, 32).frames) for s in scenes])).double()
    unet = Show1UNet3D.from_pretrained(SHAPES_DIR / "show-1-base", subfolder="unet").double()
    cascade = Show1Cascade(resolve_backbone("shapes"), "cpu")
    a = cascade.load_scheduler(cascade.backbone.base).alphas_cumprod[700].double()
    noisy, v = a.sqrt() * x0 + (1 - a).sqrt() * noise, a.sqrt() * noise - (1 - a).sqrt() * x0
    losses = {}
    for motion in ("right", "left"):
        text = torch.cat(cascade.text_embeddings([s.caption() if motion == "right" else
                                                s.caption().replace("to the right", "to the left")
                                                for s in scenes])).double()
        with torch.no_grad():
            losses[motion] = ((unet(noisy, 700, text).sample - v) ** 2).mean((1, 2, 3, 4))
    log_ratio = (losses["left"] / losses["right"]).log()
    assert report["rows"][0]["700"]["log_ratio"] == pytest.approx(float(log_ratio.mean()), abs=1e-4)
    assert report["rows"][0]["700"]["true_lower"] == float((log_ratio > 0).double().mean())
    code, _, err = run_main(probe.main, "--timesteps", "1000", "--device", "cpu", capsys=capsys)
    assert code == 2 and "--timesteps: [1000] outside the schedule's 0..999" in err
    code, _, err = run_main(probe.main, "--motions", "right,bounce", capsys=capsys)
    assert code == 2 and "--motions: bounce not a motion with a distinct reversal" in err


def test_manifest_oracle_field_is_checked(tmp_path):
    manifest = yaml.safe_load(load_benchmark("shapes").path.read_text())
    manifest["metrics"]["oracle"] = "kinetics"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(manifest))
    with pytest.raises(Exception, match="metrics.oracle"):
        load_benchmark(path, check_files=False)


@needs_weights
def test_shapes_clip_prefers_the_true_caption():
    from eval.metrics.clip import ClipMetric
    from eval.shapes.train_clip import CONFIG
    from eval.shapes.world import COLOURS, random_scene, render

    clip = ClipMetric(str(CONFIG), str(CHECKPOINT), device="cpu")
    rng = np.random.default_rng(11)
    wins = []
    for _ in range(30):
        scene = random_scene(rng, two_objects=0.0)
        frames = render(scene, 15, 32).frames
        other = next(c for c in rng.permutation(list(COLOURS)) if c != scene.objects[0].colour)
        wrong = scene.caption().replace(f" {scene.objects[0].colour} ", f" {other} ", 1)
        true_score = clip.score(Sample(frames, scene.caption()))[0]["text_alignment"]
        wins.append(true_score > clip.score(Sample(frames, wrong))[0]["text_alignment"])
    assert np.mean(wins) >= 0.8


@needs_weights
def test_training_exports_the_shipped_cascade_settings():
    """A retrained cascade gets the same sampling and adaptation settings as the shipped one."""
    from vmc.shapes.train import ADAPTATION, SETTINGS

    shipped = json.loads((SHAPES_DIR / "cascade.json").read_text())
    assert shipped["settings"] == SETTINGS
    assert {m: shipped[m] for m in ADAPTATION} == ADAPTATION
