"""eval.plot: the figures are written (PNG and PDF, atomically) and bad requests are one line."""

import pytest

from conftest import run_main
from eval.plot import main
from tests.fixture_runs import make_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("plot"), ("vmc", "tav"))


@pytest.mark.parametrize("kind,name,magic", [("bars", "bars.png", b"\x89PNG"), ("cases", "cases.pdf", b"%PDF"),
                                             ("strip", "strip.png", b"\x89PNG")])
def test_figures_are_written(run, tmp_path, capsys, kind, name, magic):
    out = tmp_path / "fig" / name
    code, stdout, _ = run_main(main, run, "--out", out, "--kind", kind, "--frames", "3", capsys=capsys)
    assert code == 0 and out.read_bytes()[:4] == magic and f"written to {out}" in stdout
    assert [p.name for p in out.parent.iterdir()] == [name]  # no temporary file left


def test_bad_requests_are_one_line(run, tmp_path, capsys):
    for args, message in ((["--out", tmp_path / "x.svg"], "give a .png or .pdf file"),
                          (["--out", tmp_path / "x.png", "--metrics", "oracle_motoin"], "'oracle_motoin' not in"),
                          (["--out", tmp_path / "x.png", "--methods", "vmc,md"], "'md' not in this run"),
                          (["--out", tmp_path / "x.png", "--kind", "strip", "--case", "nope"], "no video of case")):
        code, _, err = run_main(main, run, *args, capsys=capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("x.*"))
