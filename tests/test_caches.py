"""Cache files are written atomically with their digest; a torn or corrupt one is named in one line, made again
when a run resumes, and refused in one line by vmc.generate --adapter."""

import json
from pathlib import Path

import pytest
import torch

from conftest import run_main
from eval.manifest import load_benchmark
from eval.methods import create_method
from test_motion_inversion import one_thread, shapes_keyframes
from vmc.tensor_files import CorruptFile, load_tensors, save_tensors


def test_a_torn_or_altered_file_is_named_in_one_line(tmp_path):
    path = tmp_path / "x.safetensors"
    tensors = {"a": torch.randn(4, 5), "b": torch.arange(3)}
    save_tensors(tensors, path)
    assert [p.name for p in tmp_path.iterdir()] == ["x.safetensors"]  # no temporary file left
    assert all(torch.equal(load_tensors(path)[k], v) for k, v in tensors.items())
    whole = path.read_bytes()
    path.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(CorruptFile, match=f"{path}: torn or corrupt"):
        load_tensors(path)
    path.write_bytes(whole[:-4] + bytes(4))  # the same length, the last tensor's bytes changed
    with pytest.raises(CorruptFile, match="do not match the digest"):
        load_tensors(path)
    from safetensors.torch import save_file  # a file written before digests: read as it is

    save_file(tensors, str(path))
    assert torch.equal(load_tensors(path)["a"], tensors["a"])


def test_a_torn_inversion_cache_is_made_again_and_a_corrupt_adapter_refused(benchmark_dir, tmp_path, capsys):
    from vmc.generate import main as generate_main

    fast = {"steps": 2, "inversion_steps": 2}
    weights = shapes_keyframes(tmp_path / "shapes", vmc=fast)
    case = load_benchmark(benchmark_dir / "mini.yaml").cases[1]
    with one_thread():
        method = create_method(f"vmc:{weights}", device="cpu")
        method.cache_dir = tmp_path / "cache"
        inverted = Path(method.adapt(case)["adapter"]) / "inverted.safetensors"
        want = load_tensors(inverted)["noise"].clone()  # not a view of the file, which is cut below
        inverted.write_bytes(inverted.read_bytes()[:100])  # a kill while it was written, before atomic writes
        capsys.readouterr()
        state = create_method(f"vmc:{weights}", device="cpu")
        state.cache_dir = tmp_path / "cache"
        again = state.adapt(case)
    assert f"note: {inverted}: torn or corrupt" in capsys.readouterr().err
    assert torch.equal(again["inverted"], want) and torch.equal(load_tensors(inverted)["noise"], want)

    adapter = inverted.parent / "adapter.safetensors"
    adapter.write_bytes(adapter.read_bytes()[:-8] + bytes(8))
    code, _, err = run_main(generate_main, "--adapter", inverted.parent, "--prompt", case.target_prompts[0],
                            "--out", tmp_path / "x.mp4", "--device", "cpu", capsys=capsys)
    assert code == 2 and err.strip().splitlines() == [f"error: {adapter}: corrupt (its tensors do not match the "
                                                      "digest it was written with)"], err
    assert json.loads((inverted.parent / "adapter.json").read_text())["method"] == "vmc"
