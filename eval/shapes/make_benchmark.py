"""python -m eval.shapes.make_benchmark [--split test|dev] [--out benchmarks]

Write the `shapes` benchmark: benchmarks/shapes.yaml and its reference clips (benchmarks/shapes/*.mp4), all
rendered from the scenes listed here, so the benchmark is reproducible from the code alone. Six reference
motions: two the shapes cascade was trained on and four held out of its training (each the time reversal
of a trained motion, so text alone cannot name them to the model), each with six target prompts that
change colour, shape and background but keep the motion. Six, not three, because confidence intervals count
target prompts (seeds are replicates). The last three of each case were added later, by a rule: the
backgrounds the first three left out (other than the reference's own), then the first target's again, with
colours not used yet in the case and the shapes other than the reference's in order (for `up_left`, two
colours swapped so that no target is a prompt of `shapes-dev`).

`--split dev` writes `shapes-dev` instead: the same six motions in other scenes with three other targets each.
The shapes backbone's adaptation settings (cascade.json) are chosen on it, so that `shapes` stays a test set.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from eval.errors import cli_main
from eval.shapes.world import MOTIONS, Object, Scene, render, with_appearance

FRAMES, SIZE, FPS = 15, 64, 8.0
# the size the shapes backbone's methods generate at (its super-resolution stage), to which videos made elsewhere
# are brought (eval.protocol)
VIDEO_SIZE = [32, 32]
CASES = [  # id, reference scene, (colour, shape, background) of each target
    ("right", Scene((Object("circle", "red", 0.18),), "black", "right", (0.5, 0.55)),
     [("yellow", "star", "gray"), ("blue", "square", "striped"), ("white", "triangle", "navy"),
      ("green", "square", "beige"), ("purple", "triangle", "checkered"), ("orange", "star", "gray")]),
    ("rise", Scene((Object("square", "green", 0.17),), "beige", "rise", (0.45, 0.5)),
     [("red", "circle", "black"), ("purple", "star", "gray"), ("yellow", "triangle", "checkered"),
      ("blue", "circle", "striped"), ("white", "triangle", "navy"), ("orange", "star", "black")]),
    ("up_left", Scene((Object("triangle", "yellow", 0.18),), "navy", "up_left", (0.5, 0.5)),
     [("white", "circle", "gray"), ("orange", "square", "black"), ("green", "star", "beige"),
      ("red", "circle", "striped"), ("purple", "square", "checkered"), ("blue", "star", "gray")]),
    ("grow", Scene((Object("star", "orange", 0.18),), "gray", "grow", (0.5, 0.5)),
     [("blue", "circle", "beige"), ("white", "square", "checkered"), ("red", "triangle", "navy"),
      ("green", "circle", "black"), ("yellow", "square", "striped"), ("purple", "triangle", "beige")]),
    ("zigzag_left", Scene((Object("circle", "blue", 0.16),), "beige", "zigzag_left", (0.5, 0.5)),
     [("red", "square", "gray"), ("yellow", "star", "navy"), ("green", "triangle", "black"),
      ("white", "square", "striped"), ("purple", "triangle", "checkered"), ("orange", "star", "gray")]),
    ("circle_ccw", Scene((Object("square", "white", 0.16),), "striped", "circle_ccw", (0.5, 0.5)),
     [("orange", "circle", "navy"), ("purple", "triangle", "beige"), ("green", "star", "gray"),
      ("red", "circle", "black"), ("blue", "triangle", "checkered"), ("yellow", "star", "navy")]),
]
DEV_CASES = [  # the same motions in other scenes: where adaptation settings are tuned
    ("right", Scene((Object("square", "purple", 0.17),), "gray", "right", (0.5, 0.4)),
     [("orange", "circle", "beige"), ("green", "triangle", "navy"), ("white", "star", "checkered")]),
    ("rise", Scene((Object("circle", "orange", 0.17),), "navy", "rise", (0.55, 0.5)),
     [("white", "square", "beige"), ("blue", "triangle", "gray"), ("red", "star", "striped")]),
    ("up_left", Scene((Object("star", "white", 0.18),), "black", "up_left", (0.5, 0.5)),
     [("red", "triangle", "beige"), ("yellow", "circle", "gray"), ("blue", "square", "checkered")]),
    ("grow", Scene((Object("circle", "green", 0.18),), "navy", "grow", (0.5, 0.5)),
     [("yellow", "square", "gray"), ("purple", "star", "beige"), ("orange", "triangle", "black")]),
    ("zigzag_left", Scene((Object("triangle", "red", 0.16),), "gray", "zigzag_left", (0.5, 0.45)),
     [("white", "circle", "navy"), ("blue", "star", "beige"), ("orange", "square", "striped")]),
    ("circle_ccw", Scene((Object("circle", "yellow", 0.16),), "black", "circle_ccw", (0.5, 0.5)),
     [("red", "square", "beige"), ("white", "triangle", "gray"), ("purple", "circle", "checkered")]),
]
DESCRIPTION = "shapes world: 6 reference motions ({held_out} held out of training) x {targets} appearance changes"
SPLITS = {  # split: (benchmark name, scenes, what the manifest's first line calls it, its description)
    "test": ("shapes", CASES, "The shapes benchmark: the default of `python -m eval.run`", DESCRIPTION),
    "dev": ("shapes-dev", DEV_CASES, "The shapes benchmark's development split",
            DESCRIPTION + "; the development split, where the shapes backbone's adaptation settings are tuned"),
}
HEADER = """# {title}. Generated by python -m eval.shapes.make_benchmark{flag}
# (edit the scenes there, not here). Reference clips are rendered shapes-world scenes; meta.reference_prompt
# is the full caption of the reference, which the oracle metrics use to find the reference object.
"""


def note(motion: str, held_out: tuple[str, ...]) -> str:
    """What the manifest says of a reference motion: trained, or held out and which trained motion it reverses."""
    return f"held out of training; the time reversal of {MOTIONS[motion].reverse}" if motion in held_out else "trained"


def build(out: Path, split: str = "test") -> Path:
    from eval.video import Video, write_video
    from vmc.shapes.data import shipped_held_out  # the motions the shipped keyframe stage never saw

    name, scenes, title, description = SPLITS[split]
    held_out = shipped_held_out()
    description = description.format(held_out=len(held_out), targets=len(scenes[0][2]))
    clips = out / name
    clips.mkdir(parents=True, exist_ok=True)

    cases = []
    for cid, scene, targets in scenes:
        write_video(clips / f"{cid}.mp4", Video(render(scene, FRAMES, SIZE).frames, FPS))
        cases.append({"id": cid, "reference": f"{name}/{cid}.mp4", "train_prompt": scene.invariant_caption(),
                      "target_prompts": [with_appearance(scene, [c], [s], bg).caption() for c, s, bg in targets],
                      "meta": {"reference_prompt": scene.caption(), "motion": scene.motion,
                               "note": note(scene.motion, held_out)}})
    manifest = {"name": name, "description": description, "defaults": {"frames": FRAMES, "fps": FPS, "size": VIDEO_SIZE},
                "metrics": {"clip_model": "../eval/shapes/weights/shapes-clip.json",
                            "clip_pretrained": "../eval/shapes/weights/shapes-clip.safetensors", "oracle": "shapes"},
                "cases": cases}
    path = out / f"{name}.yaml"
    header = HEADER.format(title=title, flag="" if split == "test" else f" --split {split}")
    path.write_text(header + yaml.safe_dump(manifest, sort_keys=False, width=120))
    return path


@cli_main
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m eval.shapes.make_benchmark", description=__doc__.split("\n\n")[1])
    p.add_argument("--split", choices=sorted(SPLITS), default="test",
                   help="test: the `shapes` benchmark; dev: `shapes-dev`, for tuning settings")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "benchmarks")
    args = p.parse_args(argv)
    print(f"wrote {build(args.out, args.split)}")


if __name__ == "__main__":
    main()
