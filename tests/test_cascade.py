"""The whole cascade on a random tiny backbone written by `python -m vmc.tools.make_tiny_cascade`."""

import dataclasses

import pytest
import torch

from conftest import run_main
from eval.errors import UserError
from eval.video import read_video
from vmc.generate import main as generate_main
from vmc.backbones.show1 import Show1Cascade

FAST = dict(keyframe_steps=2, interp_steps=2, sr1_steps=2, if_steps=2, sr2_steps=2)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from vmc.tools.make_tiny_cascade import make

    return make(tmp_path_factory.mktemp("cascade") / "tiny")


def _cascade(tiny):
    backbone = Show1Cascade.from_cascade_dir(tiny)
    backbone.settings = dataclasses.replace(backbone.settings, **FAST)
    return Show1Cascade(backbone, "cpu")


def test_every_stage_end_to_end_with_scaled_shapes(tiny):
    out = _cascade(tiny).run("a red circle is moving to the right", seed=0)
    shapes = {k: tuple(v.shape) for k, v in out.items()}
    assert shapes == {"keyframes": (1, 3, 8, 16, 24), "interp": (1, 3, 29, 16, 24), "sr1": (1, 3, 29, 64, 96),
                      "sr2": (1, 3, 29, 128, 192)}
    for v in out.values():
        assert torch.isfinite(v).all() and v.abs().max() <= 1


def test_seeded_runs_reproduce(tiny):
    cascade = _cascade(tiny)
    a = cascade.run("a blue square is falling", seed=5, stages=("interp",))
    b = cascade.run("a blue square is falling", seed=5, stages=("interp",))
    c = cascade.run("a blue square is falling", seed=6, stages=("interp",))
    assert list(a) == ["keyframes", "interp"]
    torch.testing.assert_close(a["interp"], b["interp"], rtol=0, atol=0)
    assert (a["interp"] - c["interp"]).abs().max() > 1e-3


def test_inverted_start_samples_with_its_own_guidance(tiny):
    """inverted_keyframe_guidance applies exactly when the keyframes start from given latents."""
    def keyframes(init, **settings):
        cascade = _cascade(tiny)
        cascade.settings = dataclasses.replace(cascade.settings, **settings)
        return cascade.sample_keyframes("a red circle is moving to the right", 0, init)

    init = torch.randn(1, 3, 8, 16, 24, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(keyframes(init, keyframe_guidance=2.0, inverted_keyframe_guidance=11.0),
                               keyframes(init, keyframe_guidance=11.0), rtol=0, atol=0)
    assert not torch.equal(keyframes(init, keyframe_guidance=2.0, inverted_keyframe_guidance=11.0),
                           keyframes(init, keyframe_guidance=2.0))
    torch.testing.assert_close(keyframes(None, keyframe_guidance=2.0, inverted_keyframe_guidance=11.0),
                               keyframes(None, keyframe_guidance=2.0), rtol=0, atol=0)


def test_set_fills_an_unset_optional_guidance():
    from vmc.generate import apply_overrides
    from vmc.backbones.show1 import CascadeSettings

    assert apply_overrides(CascadeSettings(), ["inverted_keyframe_guidance=12"]).inverted_keyframe_guidance == 12.0


def test_kept_models_give_the_same_videos_as_reloading(tiny):
    kept = _cascade(tiny)
    assert kept.settings.keep_models  # the tiny cascade keeps its stages loaded
    reloading = _cascade(tiny)
    reloading.settings = dataclasses.replace(reloading.settings, keep_models=False)
    kept.run("a green star is rising", seed=1, stages=("sr1",))
    a = kept.run("a green star is rising", seed=2, stages=("sr1",))  # with the UNets kept from the first video
    b = reloading.run("a green star is rising", seed=2, stages=("sr1",))
    torch.testing.assert_close(a["sr1"], b["sr1"], rtol=0, atol=0)
    assert len(kept._kept) == 3 and not reloading._kept


def test_generate_writes_the_last_stage_and_optionally_the_others(tiny, tmp_path):
    out = tmp_path / "v.mp4"
    code, _, _ = run_main(generate_main, "--backbone", tiny, "--prompt", "a star is moving up", "--stages",
                          "keyframes,interp", "--out", out, "--save-stages", "--set", "keyframe_steps=2",
                          "--set", "interp_steps=2", "--device", "cpu")
    assert code == 0
    assert read_video(out).frames.shape == (29, 16, 24, 3)
    keyframes = read_video(tmp_path / "v.keyframes.mp4")
    assert keyframes.frames.shape == (8, 16, 24, 3) and keyframes.fps == 2


@pytest.mark.parametrize("args,message", [
    (["--backbone", "nowhere"], "unknown backbone 'nowhere'"),
    (["--stages", "keyframes,upscale"], "are keyframes, interp, sr1, sr2"),
    (["--set", "keyframe_steps=many"], "keyframe_steps takes a int"),
    (["--set", "colour=red"], "expected FIELD=VALUE"),
])
def test_bad_arguments(tiny, tmp_path, capsys, args, message):
    base = {"--backbone": str(tiny), "--prompt": "x", "--out": str(tmp_path / "x.mp4")}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    code, _, err = run_main(generate_main, *[a for kv in base.items() for a in kv], capsys=capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x.mp4").exists()


def test_not_a_cascade_directory_and_missing_stages(tmp_path):
    with pytest.raises(UserError, match="not a cascade directory, missing show-1-base"):
        Show1Cascade.from_cascade_dir(tmp_path)
    (tmp_path / "show-1-base").mkdir()
    backbone = Show1Cascade.from_cascade_dir(tmp_path)  # the later stages are optional
    assert backbone.stages == ("keyframes",)
    with pytest.raises(UserError, match="has no interp, sr1 stage"):
        Show1Cascade(backbone).run("a prompt", stages=["keyframes", "interp", "sr1"])


def test_whole_cascade_benchmark_runs_at_tiny_sizes():
    """bench/cascade.py (published configs, SR1's completed one included) shrunk to tiny widths: every stage runs
    and hands the next the official shapes (8 → 29 frames, ×4 SR1, SR2 at its own size)."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "bench" / "cascade.py"
    out = subprocess.run([sys.executable, str(script), "--tiny"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "(1, 3, 8, 8, 16)" in out.stdout and "(1, 3, 29, 32, 64)" in out.stdout and "per prompt" in out.stdout
