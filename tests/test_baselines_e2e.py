"""Every native method under one protocol, end to end on the shapes benchmark with reduced steps:
`eval.run --methods vmc,tav,md,inversion,t2v`."""

import json
import shutil

from conftest import REPO, run_main, shapes_subset
from eval.run import main as run_main_cli
from eval.rundir import RunFolder

METHODS = ["vmc", "tav", "md", "inversion", "t2v"]


def test_all_native_methods_on_shapes(tmp_path):
    weights = tmp_path / "shapes-fast"
    shutil.copytree(REPO / "vmc" / "shapes" / "weights", weights)
    meta = json.loads((weights / "cascade.json").read_text())
    meta["settings"].update(keyframe_steps=2, interp_steps=1, sr1_steps=1)
    fast = {"steps": 2, "inversion_steps": 2}
    meta.update(vmc={**meta["vmc"], **fast}, tav={**meta["tav"], **fast},
                md={**fast, "rank": 4, "noise_prior": 0.3}, inversion=fast)
    (weights / "cascade.json").write_text(json.dumps(meta))
    one = shapes_subset(tmp_path / "one.yaml", ["right"], prompts=1)
    out = tmp_path / "run"
    specs = ",".join(f"{m}:{weights}" for m in METHODS)
    assert run_main(run_main_cli, "--methods", specs, "--benchmark", one, "--out", out, "--device", "cpu")[0] == 0
    records = {r.method.removesuffix("-shapes"): r for r in RunFolder(out).records()}
    assert sorted(records) == sorted(METHODS)
    for name, r in records.items():
        assert r.num_frames == 15 and r.size == [32, 32], name
        assert r.metrics["oracle_motion"] is not None or "oracle_motion" in r.undefined
    trained = {m: records[m].protocol["trained_parameters"] for m in METHODS}
    assert trained["inversion"] == trained["t2v"] == 0 and all(trained[m] > 0 for m in ("vmc", "tav", "md"))
    assert trained["tav"] > trained["vmc"]  # tav adds the spatial queries and the rest of the temporal attention
    summary = (out / "summary.csv").read_text()
    assert "protocol.trained_parameters" in summary and "protocol.generate_s" in summary
