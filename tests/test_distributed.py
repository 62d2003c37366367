"""eval.distributed.launch_local: a worker killed by a signal, which cannot report itself, is reported once."""

import signal
import time

from eval.distributed import launch_local

WORKER = '''
import os, signal, time
if os.environ["RANK"] == "0":
    time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGKILL)
time.sleep(60)
'''


def test_a_killed_worker_is_reported_and_the_others_stopped(tmp_path, monkeypatch, capsys):
    (tmp_path / "dies.py").write_text(WORKER)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    start = time.monotonic()
    code = launch_local(2, "dies", [], threads=1)
    assert code == 128 + signal.SIGKILL and time.monotonic() - start < 30
    err = capsys.readouterr().err
    assert "error: dies: worker 0 was killed by signal 9; finished items are kept" in err
