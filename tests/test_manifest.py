import pytest
import yaml

from eval.errors import ManifestError
from eval.manifest import builtin_benchmarks, load_benchmark


def test_loads_cases_with_defaults_and_resolved_paths(benchmark_dir):
    b = load_benchmark(benchmark_dir / "mini.yaml")
    assert [c.id for c in b.cases] == ["right", "down"]
    right = b.case("right")
    assert right.reference == (benchmark_dir / "clips" / "right.mp4").resolve()
    assert right.frames == 8 and right.target_prompts == ("a red square is moving right", "a star is moving right")
    assert b.case("down").load_reference().frames.shape == (8, 40, 64, 3)
    assert len(right.fingerprint()) == 16 and right.fingerprint() != b.case("down").fingerprint()


def _write(tmp_path, cases, **top):
    p = tmp_path / "m.yaml"
    p.write_text(yaml.safe_dump({**top, "cases": cases}))
    return p


GOOD = {"id": "c1", "reference": "x.mp4", "train_prompt": "a dog is running", "target_prompts": ["a cat is running"]}


@pytest.mark.parametrize("change,message", [
    ({"id": "bad id!"}, "field 'id'"),
    ({"train_prompt": ""}, "case 'c1': field 'train_prompt'"),
    ({"target_prompts": []}, "case 'c1': field 'target_prompts'"),
    ({"target_prompts": ["a", 3]}, "case 'c1': field 'target_prompts[1]'"),
    ({"target_prompts": ["a", "a"]}, "lists a prompt twice"),
    ({"frames": 1}, "case 'c1': field 'frames'"),
    ({"fps": -2}, "case 'c1': field 'fps'"),
    ({"colour": "red"}, "case 'c1': unknown field(s) ['colour']"),
    ({"reference": None}, "case 'c1': field 'reference'"),
])
def test_validation_names_file_case_and_field(tmp_path, change, message):
    p = _write(tmp_path, [{**GOOD, **change}])
    with pytest.raises(ManifestError) as e:
        load_benchmark(p, check_files=False)
    assert str(p) in str(e.value) and message in str(e.value)


def test_missing_field_duplicate_ids_and_bad_yaml(tmp_path):
    case = dict(GOOD)
    del case["train_prompt"]
    with pytest.raises(ManifestError, match="case 'c1': field 'train_prompt' is missing"):
        load_benchmark(_write(tmp_path, [case]), check_files=False)
    with pytest.raises(ManifestError, match="'c1': field 'id' is used by two cases"):
        load_benchmark(_write(tmp_path, [GOOD, GOOD]), check_files=False)
    bad = tmp_path / "bad.yaml"
    bad.write_text("cases: [\n  - id: x\n  oops")
    with pytest.raises(ManifestError, match=r"bad.yaml: line \d+: not valid YAML"):
        load_benchmark(bad)
    with pytest.raises(ManifestError, match="unknown benchmark 'nope'"):
        load_benchmark("nope")


def test_missing_clips_are_listed_and_optional_cases_skipped(tmp_path):
    (tmp_path / "have.mp4").write_bytes(b"x")
    cases = [{**GOOD, "id": "a", "reference": "gone1.mp4"}, {**GOOD, "id": "b", "reference": "gone2"},
             {**GOOD, "id": "c", "reference": "have.mp4"}]
    with pytest.raises(ManifestError, match=r"2 reference clip\(s\) missing: a \(.*gone1.mp4\), b \(.*gone2\)"):
        load_benchmark(_write(tmp_path, cases))
    notes = []
    b = load_benchmark(_write(tmp_path, [{**GOOD, "id": "a", "reference": "gone", "optional": True},
                                         {**GOOD, "id": "c", "reference": "have.mp4"}]), warn=notes.append)
    assert [c.id for c in b.cases] == ["c"] and "skipping optional case 'a'" in notes[0]


def test_vmc_paper_manifest_matches_the_official_prompts(tmp_path):
    assert "vmc_paper" in builtin_benchmarks()
    b = load_benchmark("vmc_paper", check_files=False)
    ids = [c.id for c in b.cases]
    assert ids == ["bear", "bird_forest", "car_forest", "pills_black", "sharks_swimming", "skiing", "child_bike"]
    assert b.case("pills_black").train_prompt == "pills are falling."
    assert len(b.case("pills_black").target_prompts) == 7 and all(c.frames == 8 for c in b.cases)
    with pytest.raises(ManifestError, match="5 reference clip"):  # the five official clips are required
        load_benchmark("vmc_paper", data_root=tmp_path)
    for case in ("bear", "bird_forest", "car_forest", "pills_black", "sharks_swimming"):
        (tmp_path / case).mkdir()
    assert len(load_benchmark("vmc_paper", data_root=tmp_path, warn=lambda m: None).cases) == 5
