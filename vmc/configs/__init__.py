"""Published configurations shipped as data: showlab/show-1-base's unet/config.json (show1-base-unet.json) and
scheduler/scheduler_config.json (show1-base-scheduler.json); showlab/show-1-sr2's scheduler config
(show1-sr2-scheduler.json); showlab/show-1-sr1's unet/config.json (show1-sr1-unet.json), of which the stored hub
copies lack some keys: `up_block_types` mirrors the down blocks (the DeepFloyd IF convention) and the others
(`resnet_time_scale_shift`, the time-embedding keys, `transformer_layers_per_block`, …) take the base model's
values; `sample_size` is 256, the stage's output width. Only the benchmarks build SR1 from it; real runs load the
hub's own file."""

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load_config(name: str) -> dict:
    return json.loads((HERE / f"{name}.json").read_text())
