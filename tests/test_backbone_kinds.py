"""Backbone kinds: one registered from a package outside the project (an entry point) is recognised by its own
model_index.json class and used by eval.run; the registries' refusals in one line; model folders of a layout
no kind loads, or lacking a part, refused in one line before anything is written; tiny profiles made explicitly."""

from __future__ import annotations

import json
import shutil
import textwrap

import pytest
import yaml

from conftest import run_main
from eval.errors import UserError
from eval.rundir import RunFolder
from eval.run import main as run_main_cli

PLUGIN = '''
from vmc.backbones.latent import LatentVideoPipeline


class MyVideoPipeline(LatentVideoPipeline):
    """A third kind: ZeroScope's layout under its own pipeline class name."""

    kind = "my-video"
    description = "my video backbone"
    model_index_classes = ("MyTextToVideoPipeline",)


class NotAPipeline:
    kind = "not-a-pipeline"
'''


@pytest.fixture(scope="module")
def tiny_zeroscope(tmp_path_factory):
    from vmc.tools.make_tiny_zeroscope import make

    root = make(tmp_path_factory.mktemp("zeroscope") / "tiny-zeroscope")
    meta = json.loads((root / "cascade.json").read_text())
    meta["settings"].update(keyframe_steps=2)
    (root / "cascade.json").write_text(json.dumps(meta))
    return root


def install(site, entry_points: str, monkeypatch):
    """A package on sys.path with its dist-info, registering `entry_points` (entry_points.txt sections)."""
    info = site / "my_video_kind-1.0.dist-info"
    info.mkdir(parents=True)
    (site / "my_video_kind.py").write_text(textwrap.dedent(PLUGIN))
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-video-kind\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)
    monkeypatch.syspath_prepend(str(site))


def one_case(benchmark_dir, tiny_clip):
    cfg, ckpt = tiny_clip
    manifest = yaml.safe_load((benchmark_dir / "mini.yaml").read_text())
    manifest["cases"] = manifest["cases"][1:]  # one case, one prompt
    manifest["metrics"] = {"clip_model": str(cfg), "clip_pretrained": str(ckpt)}
    (benchmark_dir / "one.yaml").write_text(yaml.safe_dump(manifest))
    return benchmark_dir / "one.yaml"


def test_a_kind_from_an_outside_package_is_recognised_by_its_model_index_and_runs(
        tiny_zeroscope, benchmark_dir, tiny_clip, tmp_path, monkeypatch):
    install(tmp_path / "site", "[vmc_suite.backbones]\nmy-video = my_video_kind:MyVideoPipeline\n", monkeypatch)
    folder = tmp_path / "mine"
    shutil.copytree(tiny_zeroscope, folder)
    index = json.loads((folder / "model_index.json").read_text())
    (folder / "model_index.json").write_text(json.dumps({**index, "_class_name": "MyTextToVideoPipeline"}))
    out = tmp_path / "run"
    args = ["--methods", f"t2v:{folder}", "--benchmark", one_case(benchmark_dir, tiny_clip), "--device", "cpu",
            "--jobs", "1", "--out", out]
    code, _, err = run_main(run_main_cli, *args)
    assert code == 0, err
    (record,) = RunFolder(out).records()
    assert record.method == "t2v-tiny-zeroscope" and record.num_frames == 8 and record.size == [64, 64]
    assert json.loads((out / "run.json").read_text())["methods"]["t2v-tiny-zeroscope"]["backbone_kind"] == "my-video"


@pytest.mark.parametrize("entry,message", [
    ("latent = my_video_kind:MyVideoPipeline", "backbone kind 'latent' is registered twice: "
     "vmc.backbones.latent:LatentVideoPipeline (built in) and my_video_kind:MyVideoPipeline (entry point "
     "vmc_suite.backbones of my-video-kind)"),
    ("not-a-pipeline = my_video_kind:NotAPipeline", "backbone kind 'not-a-pipeline' (my_video_kind:NotAPipeline, "
     "entry point vmc_suite.backbones of my-video-kind): not a vmc.backbones.base.BackbonePipeline subclass whose "
     "kind is 'not-a-pipeline'"),
    ("other = my_video_kind:MyVideoPipeline", "backbone kind 'other' (my_video_kind:MyVideoPipeline, entry point "
     "vmc_suite.backbones of my-video-kind): not a vmc.backbones.base.BackbonePipeline subclass whose kind is "
     "'other'"),
])
def test_the_registry_refuses_a_clash_and_a_wrong_class_in_one_line(tiny_zeroscope, tmp_path, monkeypatch, capsys,
                                                                     entry, message):
    install(tmp_path / "site", f"[vmc_suite.backbones]\n{entry}\n", monkeypatch)
    out = tmp_path / "run"
    code, _, err = run_main(run_main_cli, "--methods", f"t2v:{tiny_zeroscope}", "--out", out, capsys=capsys)
    assert code == 2 and err.strip().splitlines() == [f"error: {message}"]
    assert not out.exists()


def test_the_method_and_metric_registries_refuse_a_clash_in_one_line(tmp_path, monkeypatch):
    from eval.methods import create_method
    from eval.metrics import available_metrics

    install(tmp_path / "site", "[vmc_suite.methods]\nvmc = my_video_kind:MyVideoPipeline\n"
                               "[vmc_suite.metrics]\nclip = my_video_kind:NotAPipeline\n", monkeypatch)
    with pytest.raises(UserError) as refused:
        create_method("vmc")
    message = str(refused.value)
    assert message.startswith("method 'vmc' is registered twice: ") and "\n" not in message
    assert "vmc.method:VMCMethod (entry point vmc_suite.methods of " in message
    assert "my_video_kind:MyVideoPipeline (entry point vmc_suite.methods of my-video-kind)" in message
    available_metrics.cache_clear()
    with pytest.raises(UserError, match=r"^metric 'clip' is registered twice: eval.metrics.clip:ClipMetric \(built "
                                        r"in\) and my_video_kind:NotAPipeline"):
        available_metrics()
    available_metrics.cache_clear()


def test_a_folder_of_another_layout_or_lacking_a_part_is_one_line_and_writes_nothing(tiny_zeroscope, tmp_path,
                                                                                    capsys):
    other = tmp_path / "hunyuan"
    other.mkdir()
    (other / "model_index.json").write_text(json.dumps({"_class_name": "HunyuanVideoPipeline",
                                                        "transformer": ["diffusers", "HunyuanVideoTransformer3DModel"]}))
    no_vae = tmp_path / "no-vae"
    shutil.copytree(tiny_zeroscope, no_vae, ignore=shutil.ignore_patterns("vae"))
    accepted = "accepted: show1: a Show-1 cascade directory (show-1-base/ inside) or a copy of show-1-base"
    for folder, expected in [(other, f"{other / 'model_index.json'}: a HunyuanVideoPipeline folder, which no backbone kind "
                                   f"loads; {accepted}"),
                             (no_vae, f"{no_vae}: a latent video backbone (ModelScope / ZeroScope) lacks "
                                      "vae/config.json (a diffusers TextToVideoSDPipeline folder")]:
        out = tmp_path / f"run-{folder.name}"
        code, _, err = run_main(run_main_cli, "--methods", f"t2v:{folder}", "--out", out, capsys=capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith(f"error: {expected}"), err
        assert folder == no_vae or ("; latent: a diffusers TextToVideoSDPipeline folder (ModelScope / ZeroScope: " in err
                                    and "; dit: a diffusers WanPipeline or CogVideoXPipeline folder (" in err)
        assert not out.exists()


def test_a_tiny_profile_is_made_by_its_command_not_by_resolving_its_name(tmp_path, monkeypatch, capsys):
    from vmc.backbones import resolve_backbone

    with pytest.raises(UserError, match=f"backbone 'tiny' is not made yet: python -m vmc.tools.make_tiny_cascade "
                                        f"{tmp_path / 'tiny-cascade'} makes it"):
        resolve_backbone("tiny", cache=tmp_path)
    monkeypatch.setenv("VMC_CACHE", str(tmp_path))  # the command line reads the user cache and passes it down
    code, _, err = run_main(run_main_cli, "--methods", "t2v:tiny-zeroscope", "--out", tmp_path / "run", capsys=capsys)
    assert code == 2 and err.strip().splitlines() == [f"error: backbone 'tiny-zeroscope' is not made yet: python -m "
                                                      f"vmc.tools.make_tiny_zeroscope {tmp_path / 'tiny-zeroscope'} "
                                                      "makes it"]
    assert list(tmp_path.iterdir()) == []
