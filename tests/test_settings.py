"""Settings are checked against what each method declares before anything is written: a label that is no
method of the run, a setting a method lacks, a value of the wrong type or out of its range, each refused in one
line naming the file, the method, the setting and what it may be, with no run.json left behind."""

import json

import pytest

from conftest import run_main
from eval.errors import UserError
from eval.methods import create_method
from eval.run import main as run_main_cli
from eval.settings import Setting, check_settings

REFUSED = [  # (methods, settings file content, what the one line says)
    ("vmc", {"vmcc": {"lr": 1e-3}}, "'vmcc' is no method of this run (its methods: vmc)"),
    ("vmc", {"vmc": {"lr": -0.001}}, "method vmc, setting lr: -0.001 is not allowed (allowed: a number > 0)"),
    ("vmc", {"vmc": {"steps": "abc"}}, "method vmc, setting steps: \"abc\" is not allowed (allowed: an integer ≥ 1)"),
    ("vmc", {"vmc": {"steps": -3}}, "method vmc, setting steps: -3 is not allowed (allowed: an integer ≥ 1)"),
    ("vmc", {"vmc": {"steps": 2.5}}, "setting steps: 2.5 is not allowed (allowed: an integer ≥ 1)"),
    ("vmc", {"vmc": {"mixed_precision": "xyz"}},
     "method vmc, setting mixed_precision: \"xyz\" is not allowed (allowed: one of auto, bf16, fp16, no)"),
    ("md", {"md": {"noise_prior": 1.5}}, "method md, setting noise_prior: 1.5 is not allowed (allowed: a number in [0, 1])"),
    ("motionclone", {"motionclone": {"scale": "big"}},
     "method motionclone, setting scale: \"big\" is not allowed (allowed: a number > 0)"),
    ("motionclone", {"motionclone": {"guided_share": -5}},
     "method motionclone, setting guided_share: -5 is not allowed (allowed: a number in [0, 1])"),
    ("dmt", {"dmt": {"lr": [0.01]}}, "method dmt, setting lr: [0.01] is not allowed (allowed: a list of 2 numbers > 0)"),
]


@pytest.mark.parametrize("methods,settings,line", REFUSED, ids=[json.dumps(s) for _, s, _ in REFUSED])
def test_a_bad_setting_is_one_line_before_anything_is_written(methods, settings, line, benchmark_dir, capsys):
    path = benchmark_dir / "settings.json"
    path.write_text(json.dumps({"methods": settings}))
    out = benchmark_dir / "run"
    code, _, err = run_main(run_main_cli, "--methods", methods, "--benchmark", benchmark_dir / "mini.yaml",
                            "--settings", path, "--out", out, "--device", "cpu", capsys=capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: {path}: ") and line in err, err
    assert not out.exists()


def test_a_bad_setting_of_the_backbone_names_its_cascade_json():
    method = create_method("vmc", device="cpu")
    method.backbone.adaptation = {**method.backbone.adaptation, "vmc": {"lr": 0}}
    with pytest.raises(UserError, match=r"backbone shapes \(cascade.json, entry vmc\), method vmc, setting lr: 0 is "
                                        r"not allowed \(allowed: a number > 0\)"):
        method.configure({})


def test_every_official_value_is_declared_and_valid_and_every_search_range_is_valid():
    for name in ("vmc", "vmc-eps", "tav", "md", "motion-inversion", "inversion", "motionclone", "dmt"):
        method = create_method(name, device="cpu")
        method.configure({})  # the official values and the shapes backbone's pass their own declarations
        declared = method.declared()
        check_settings({**method.defaults, **getattr(method, "own_settings", {})}, declared, name)
        for key, param in method.search_space().items():
            ends = param.choices or (param.low, param.high)
            assert all(declared[key].accepts(int(v) if param.integer else v) for v in ends), (name, key)


def test_a_search_range_is_not_a_validity_range():
    lr = create_method("vmc", device="cpu").declared()["lr"]
    assert lr.search.high < 1.0 and lr.accepts(1.0) and not lr.accepts(0.0) and not lr.accepts(True)
    assert Setting(float, optional=True).accepts(None) and not Setting(float).accepts(float("nan"))
