"""The dashboard on a run folder it cannot fully read: a readable message naming the file, no traceback (issue 42)."""

import os
import shutil

from tests.conftest import REPO
from tests.fixture_runs import make_run

PAGES = ["Leaderboard", "Gallery"]  # the sidebar leaves the run out before any page reads it


def test_a_bad_line_in_results_is_a_message_not_a_traceback(tmp_path):
    from streamlit.testing.v1 import AppTest

    root = tmp_path / "runs"
    root.mkdir()
    shutil.move(make_run(tmp_path / "a", ("vmc", "tav")), root / "bad")
    with open(root / "bad" / "results.jsonl", "a") as f:
        f.write("this is not JSON\n{}\n")
    os.environ["VMC_DASHBOARD_RUNS"] = str(root)
    for page in PAGES:
        at = AppTest.from_file(str(REPO / "dashboard" / "main.py"), default_timeout=120)
        at.run()
        at.sidebar.multiselect[0].set_value(["bad"])
        at.sidebar.radio[0].set_value(page)
        at.run()
        assert not at.exception, (page, [e.value for e in at.exception])
        errors = " ".join(e.value for e in at.error)
        assert "Run `bad` cannot be read" in errors and "results.jsonl: line" in errors, (page, errors)
