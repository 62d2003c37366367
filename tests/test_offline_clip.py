"""Offline, a CLIP whose weights are not on the machine fails at once in one line naming the ways out; eval.run's
--help lists the registered methods."""

import socket
import time

import pytest

from conftest import run_main
from eval.errors import UserError


@pytest.mark.parametrize("model,pretrained", [("ViT-B-32", "openai"), ("hf:openai/clip-vit-base-patch32", None)])
def test_missing_clip_fails_at_once_offline(tmp_path, monkeypatch, model, pretrained):
    import huggingface_hub.constants
    import open_clip  # noqa: F401  imported first: the time asked of the check excludes the libraries' import
    import transformers  # noqa: F401

    from eval.metrics.clip import ClipMetric

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))  # nothing cached
    monkeypatch.setenv("HOME", str(tmp_path))  # nor in open_clip's ~/.cache/clip

    def no_network(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(socket, "create_connection", no_network)
    t0 = time.perf_counter()
    with pytest.raises(UserError) as e:
        ClipMetric(model=model, pretrained=pretrained)
    assert time.perf_counter() - t0 < 5
    message = str(e.value)
    assert "\n" not in message and "cannot be reached" in message
    for option in ("--clip-pretrained FILE", "--clip-model hf:DIR", "shapes-clip.json", "metrics: clip_model"):
        assert option in message


def test_run_help_lists_the_registered_methods(capsys):
    from eval.run import main

    code, out, _ = run_main(main, "--help", capsys=capsys)
    assert code == 0
    listed = out.split("registered methods:")[1].replace("\n", " ")
    for name in ("vmc", "tav", "reference", "precomputed:DIR", "motionclone"):
        assert f" {name}," in listed or f" {name} " in listed
