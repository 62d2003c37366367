"""The tuning family rebuilds every recipe's adapted UNet from its adapter folder alone: `python -m vmc.generate
--adapter` samples the same keyframes as the method that made the adapter, with no per-method code of its own."""

import json

import numpy as np
import pytest

from conftest import run_main
from eval.manifest import load_benchmark
from eval.methods import create_method
from test_motion_inversion import one_thread, shapes_keyframes

FAST = {"steps": 2, "inversion_steps": 2}


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.mark.parametrize("name", ["vmc", "tav", "md"])
def test_generate_rebuilds_each_recipe_from_its_adapter(name, benchmark_dir, tmp_path, capsys, monkeypatch):
    import eval.video
    from vmc.generate import main as generate_main

    weights = shapes_keyframes(tmp_path / "shapes", vmc=FAST, tav=FAST, md={**FAST, "rank": 4, "noise_prior": 0.5})
    case = load_benchmark(benchmark_dir / "mini.yaml").cases[1]
    method = create_method(f"{name}:{weights}", device="cpu")
    method.cache_dir = tmp_path / "cache"
    state = method.adapt(case)
    want = method.generate(state, case.target_prompts[0], 3).frames

    written = {}
    monkeypatch.setattr(eval.video, "write_video", lambda path, video: written.setdefault("video", video))
    code, _, err = run_main(generate_main, "--adapter", state["adapter"], "--prompt", case.target_prompts[0],
                            "--seed", 3, "--device", "cpu", "--out", tmp_path / "x.mp4", capsys=capsys)
    assert code == 0, err
    assert np.array_equal(written["video"].frames, want)


def test_generate_refuses_an_adapter_of_a_method_that_does_not_tune(tmp_path, capsys):
    from vmc.adapter import FORMAT
    from vmc.generate import main as generate_main

    weights = shapes_keyframes(tmp_path / "shapes")
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter.safetensors").write_bytes(b"")
    for made_by, problem in (("t2v", "made by t2v, which does not tune the UNet"), ("nope", "unknown method 'nope'")):
        (folder / "adapter.json").write_text(json.dumps({"format": FORMAT, "method": made_by, "backbone": str(weights)}))
        code, _, err = run_main(generate_main, "--adapter", folder, "--prompt", "a square", "--out", tmp_path / "x.mp4",
                                "--device", "cpu", capsys=capsys)
        assert code == 2 and problem in err, err
