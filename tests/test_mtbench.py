"""The MTBench converter on a small fake copy of the dataset's layout (DeT's evaluation.py: <case>/videos/<case>.mp4,
eval_prompts.txt, prompts.txt, masks/<case>/00000.png), the manifest it writes, and its one-line errors."""

import json

import numpy as np
import pytest
import yaml

from conftest import moving_square
from eval.errors import ManifestError
from eval.manifest import load_benchmark
from eval.mtbench import main


def fails(argv, capsys) -> str:
    """The one line a failing conversion prints, after its exit with status 2."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and err.startswith("error: ")
    return err


def fake_case(parent, cid, prompts, caption="A dog runs on the grass.", mask=True):
    from PIL import Image

    from eval.video import Video, write_video

    folder = parent / cid
    (folder / "videos").mkdir(parents=True)
    write_video(folder / "videos" / f"{cid}.mp4", Video(moving_square(6, 32, 48, seed=len(cid)), 8))
    (folder / "eval_prompts.txt").write_text("".join(f"{p}  \n" for p in prompts))  # trailing spaces, as shipped
    (folder / "prompts.txt").write_text(caption)
    (folder / "videos.txt").write_text(f"videos/{cid}.mp4")
    if mask:
        (folder / "masks" / cid).mkdir(parents=True)
        mask = np.zeros((32, 48), np.uint8)
        mask[8:20, 10:30] = 255  # the subject
        Image.fromarray(mask).save(folder / "masks" / cid / "00000.png")
    return folder


@pytest.fixture
def mtbench(tmp_path):
    root = tmp_path / "MTBench"
    fake_case(root / "easy", "dog-agility", ["A robot is running on the grass.", "A cat is running on mars."])
    fake_case(root / "hard", "dance-twirl", ["A gorilla is dancing on the beach."], caption="A woman is dancing.",
              mask=False)
    fake_case(root, "snowboard", ["A panda is snowboarding."])  # no level folder
    return root


def test_converter_writes_a_manifest_that_runs(mtbench, capsys):
    main([str(mtbench)])
    out = mtbench / "mtbench.yaml"
    raw = yaml.safe_load(out.read_text())
    assert raw["root"] == "." and raw["metrics"] == {"clip_model": "hf:openai/clip-vit-base-patch32",
                                                     "dino_model": "hf:facebook/dino-vitb16", "mtbench": True}
    bench = load_benchmark(out)
    cases = {c.id: c for c in bench.cases}
    assert set(cases) == {"dog-agility", "dance-twirl", "snowboard"}
    dog = cases["dog-agility"]
    assert dog.target_prompts == ("A robot is running on the grass.", "A cat is running on mars.")
    assert dog.train_prompt == dog.meta["reference_prompt"] == "A dog runs on the grass."
    assert dog.meta["difficulty"] == "easy" and dog.mask == mtbench / "easy/dog-agility/masks/dog-agility/00000.png"
    assert dog.load_mask().shape == (32, 48) and dog.load_mask()[8:20, 10:30].all() and dog.load_mask().sum() == 240
    assert cases["dance-twirl"].mask is None and cases["dance-twirl"].load_mask() is None
    assert dog.reference == (mtbench / "easy/dog-agility/videos/dog-agility.mp4").resolve()
    assert cases["dance-twirl"].meta == {"reference_prompt": "A woman is dancing.", "difficulty": "hard"}
    assert "difficulty" not in cases["snowboard"].meta
    assert bench.metrics["mtbench"] is True
    assert dog.load_reference().frames.shape[0] == 6
    assert "wrote" in capsys.readouterr().out


def test_levels_from_a_file_and_manifest_elsewhere(mtbench, tmp_path, capsys):
    levels = tmp_path / "levels.json"
    levels.write_text(json.dumps({"snowboard": "Medium"}))
    out = tmp_path / "manifests" / "mt.yaml"
    main([str(mtbench), "--out", str(out), "--difficulty", str(levels)])
    bench = load_benchmark(out)
    assert {c.id: c.meta.get("difficulty") for c in bench.cases} == {"dog-agility": "easy", "dance-twirl": "hard",
                                                                      "snowboard": "medium"}
    (tmp_path / "levels.txt").write_text("snowboard extreme\n")
    assert "level 'extreme'" in fails([str(mtbench), "--out", str(out), "--difficulty", str(tmp_path / "levels.txt")],
                                      capsys)


def test_bad_copies_are_one_line(tmp_path, mtbench, capsys):
    (tmp_path / "nothing").mkdir()
    assert "no MTBench case" in fails([str(tmp_path / "nothing")], capsys)
    assert "no such folder" in fails([str(tmp_path / "missing")], capsys)
    (mtbench / "snowboard" / "videos" / "snowboard.mp4").unlink()
    assert "no reference clip videos/snowboard.mp4" in fails([str(mtbench)], capsys)


def test_a_manifest_mask_that_is_missing_is_refused(tmp_path):
    path = tmp_path / "m.yaml"
    (tmp_path / "a.mp4").write_bytes(b"")
    path.write_text(yaml.safe_dump({"cases": [{"id": "a", "reference": "a.mp4", "train_prompt": "x",
                                               "target_prompts": ["y"], "mask": "masks/a.png"}]}))
    with pytest.raises(ManifestError, match=r"1 mask\(s\) missing: a \("):
        load_benchmark(path)
    assert load_benchmark(path, check_files=False).cases[0].mask == (tmp_path / "masks/a.png").resolve()


def test_manifest_checks_the_new_metrics_fields(tmp_path):
    path = tmp_path / "m.yaml"
    case = {"id": "a", "reference": "a.mp4", "train_prompt": "x", "target_prompts": ["y"]}
    path.write_text(yaml.safe_dump({"metrics": {"mtbench": "yes"}, "cases": [case]}))
    with pytest.raises(ManifestError, match="'metrics.mtbench' must be true or false"):
        load_benchmark(path, check_files=False)
    path.write_text(yaml.safe_dump({"metrics": {"tracker": "lk"}, "cases": [case]}))
    with pytest.raises(ManifestError, match="may only set 'clip_model', 'clip_pretrained', 'dino_model'"):
        load_benchmark(path, check_files=False)


def test_eval_run_scores_mtbench_metrics_on_the_converted_benchmark(mtbench, tmp_path, capsys, monkeypatch):
    """`eval.run --benchmark` on the converted copy: the manifest asks for MTBench's metrics; offline, the DINO it
    names (not in the cache) is one line, and a local one scores every video."""
    from huggingface_hub import constants

    from conftest import run_main
    from eval.run import main as run_cli
    from eval.rundir import RunFolder
    from test_dino import save_vit

    main([str(mtbench)])
    manifest = mtbench / "mtbench.yaml"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    capsys.readouterr()
    code, _, err = run_main(run_cli, "--methods", "reference", "--benchmark", manifest, "--metrics", "dino",
                            "--out", tmp_path / "offline", capsys=capsys)
    assert code == 2 and err.count("\n") == 1 and "facebook/dino-vitb16" in err and "--dino-model" in err
    dino = save_vit(tmp_path / "dino")
    code, out, err = run_main(run_cli, "--methods", "reference", "--benchmark", manifest, "--metrics",
                              "tracks_mtbench,dino", "--dino-model", f"hf:{dino}", "--out", tmp_path / "run",
                              capsys=capsys)
    assert code == 0, err
    records = RunFolder(tmp_path / "run").records()
    assert len(records) == 4
    for r in records:
        assert set(r.metrics) == {"motion_fidelity_mtbench", "motion_fidelity_mtbench_hybrid",
                                  "temporal_consistency_mtbench"}
        assert r.metrics["motion_fidelity_mtbench"] == pytest.approx(1.0, abs=1e-4)  # the reference, re-encoded
    specs = RunFolder(tmp_path / "run").config["metric_specs"]
    assert specs["tracks_mtbench"]["hybrid"]["seed"] == 0 and specs["dino"]["model"] == "hf:dino"
