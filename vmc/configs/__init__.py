"""Published model configurations shipped as data (show1-base-unet.json: showlab/show-1-base's unet/config.json)."""

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load_config(name: str) -> dict:
    return json.loads((HERE / f"{name}.json").read_text())
