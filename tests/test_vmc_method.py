"""vmc and t2v as eval.run methods, end to end on the tiny cascade (few steps); vmc-eps is vmc with another loss
(its settings: tests/test_tune.py)."""

import json

import yaml

from conftest import run_main
from eval.run import main as run_main_cli
from eval.rundir import RunFolder


def _fast_tiny(tmp_path):
    from vmc.tools.make_tiny_cascade import make

    root = make(tmp_path / "tiny")
    meta = json.loads((root / "cascade.json").read_text())
    meta["settings"].update(keyframe_steps=2, interp_steps=2, sr1_steps=2, if_steps=2, sr2_steps=2)
    meta["vmc"] = {"steps": 3, "inversion_steps": 3}
    (root / "cascade.json").write_text(json.dumps(meta))
    return root


def test_vmc_t2v_and_reference_run_end_to_end(benchmark_dir, tiny_clip, tmp_path):
    tiny = _fast_tiny(tmp_path)
    cfg, ckpt = tiny_clip
    manifest = yaml.safe_load((benchmark_dir / "mini.yaml").read_text())
    manifest["cases"] = manifest["cases"][1:]  # one case, one prompt
    manifest["metrics"] = {"clip_model": str(cfg), "clip_pretrained": str(ckpt)}
    (benchmark_dir / "one.yaml").write_text(yaml.safe_dump(manifest))
    out = tmp_path / "run"
    args = ["--methods", f"vmc:{tiny},t2v:{tiny},reference", "--benchmark",
            benchmark_dir / "one.yaml", "--out", out, "--device", "cpu"]
    assert run_main(run_main_cli, *args)[0] == 0
    records = RunFolder(out).records()
    assert [r.method for r in records] == ["vmc-tiny", "t2v-tiny", "reference"]
    for r in records[:2]:
        assert r.num_frames == 29 and r.size == [128, 192]
        assert r.metrics["text_alignment"] is not None
    adapters = list((out / "cache").glob("vmc-tiny/down/*/adapter.json"))
    assert len(adapters) == 1
    info = json.loads(adapters[0].read_text())
    assert info["loss"] == "cosine" and len(info["loss_history"]) == 3 and info["train_prompt"] == "a square is falling"
    run = json.loads((out / "run.json").read_text())
    assert run["methods"]["vmc-tiny"]["train"]["rule"] == "qkv"


def test_adapter_cache_and_run_info_are_keyed_by_the_weights(benchmark_dir, tmp_path):
    """New weights under the same backbone name (an upgraded shapes cascade) must not reuse old adapters, nor
    add videos to a run folder made with the old ones; the same files copied anew (a reinstall) change neither."""
    import os

    import torch
    from safetensors.torch import load_file, save_file

    from eval.manifest import load_benchmark
    from vmc.method import VMCMethod

    tiny = _fast_tiny(tmp_path)
    case = load_benchmark(benchmark_dir / "mini.yaml").cases[1]

    def adapter_folder_and_weights():
        method = VMCMethod(str(tiny), device="cpu")
        method.cache_dir = tmp_path / "cache"
        return method.adapt(case)["adapter"], method.info()["weights"]

    def perturb(stage):
        weights = next((tiny / stage / "unet").glob("*.safetensors"))
        state = load_file(str(weights))
        save_file({k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v for k, v in state.items()},
                  str(weights))

    first = adapter_folder_and_weights()
    for f in tiny.rglob("*"):  # new modification times, same contents
        os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    assert adapter_folder_and_weights() == first
    perturb("show-1-base")
    second = adapter_folder_and_weights()
    assert second[0] != first[0] and second[1] != first[1]
    perturb("show-1-interpolation")  # the adapter does not depend on a later stage; the videos do
    third = adapter_folder_and_weights()
    assert third[0] == second[0] and third[1] != second[1]


def test_a_bad_adaptation_setting_is_one_clear_error(tmp_path):
    import pytest

    from eval.errors import UserError
    from vmc.method import VMCMethod

    tiny = _fast_tiny(tmp_path)
    meta = json.loads((tiny / "cascade.json").read_text())
    meta["vmc"]["gradient_checkpointing"] = "partial"
    (tiny / "cascade.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="cascade.json, entry vmc.*setting gradient_checkpointing: \"partial\" is not "
                                        "allowed .allowed: one of none, convs, full"):
        VMCMethod(str(tiny), device="cpu").configure({})
