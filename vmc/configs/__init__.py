"""Published configurations shipped as data: showlab/show-1-base's unet/config.json (show1-base-unet.json) and
scheduler/scheduler_config.json (show1-base-scheduler.json); showlab/show-1-sr2's scheduler config
(show1-sr2-scheduler.json)."""

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load_config(name: str) -> dict:
    return json.loads((HERE / f"{name}.json").read_text())
