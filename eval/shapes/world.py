"""The shapes world: procedurally generated videos of coloured shapes moving on named backgrounds, with
captions and per-frame ground truth. Deterministic by seed.

A scene is one or two objects (shape, colour) on a background, all following one motion. Positions are in
frame units (0..1, y down), sizes are radii in frame units. Captions follow one grammar, which
`parse_caption` inverts, so metrics can read what a prompt asks for:

    a red circle is moving to the right on a blue background
    a red circle and a white star are falling on a striped background
    a circle is moving to the right                       (appearance-invariant form)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "star")
COLOURS = {  # object colours: far apart in RGB so colour segmentation is unambiguous
    "red": (220, 40, 40), "green": (40, 190, 60), "blue": (50, 90, 235), "yellow": (245, 220, 40),
    "white": (245, 245, 245), "purple": (150, 50, 200), "orange": (250, 140, 20),
}
PLAIN_BACKGROUNDS = {"black": (20, 20, 20), "gray": (120, 120, 120), "beige": (205, 185, 145),
                     "navy": (20, 30, 90)}
TEXTURES = {"striped": ((35, 35, 35), (85, 85, 85)), "checkered": ((30, 60, 50), (70, 110, 95))}
BACKGROUNDS = (*PLAIN_BACKGROUNDS, *TEXTURES)


@dataclass(frozen=True)
class Motion:
    name: str
    phrase: str  # "is moving to the right" (the verb phrase of a one-object caption)
    reverse: str  # the motion played backwards


def _line(dx, dy):
    return lambda t: (dx * (t - 0.5), dy * (t - 0.5), 1.0, 0.0)


_DIRS = {"right": (1, 0), "left": (-1, 0), "up": (0, -1), "down": (0, 1), "up_right": (1, -1),
         "up_left": (-1, -1), "down_right": (1, 1), "down_left": (-1, 1)}
_DIR_WORDS = {"right": "to the right", "left": "to the left", "up": "up", "down": "down",
              "up_right": "up and to the right", "up_left": "up and to the left",
              "down_right": "down and to the right", "down_left": "down and to the left"}
_OPPOSITE = {"right": "left", "left": "right", "up": "down", "down": "up", "up_right": "down_left",
             "down_left": "up_right", "up_left": "down_right", "down_right": "up_left"}

MOTIONS: dict[str, Motion] = {}
_PATHS = {}  # name → t in [0, 1] → (dx, dy, scale, angle in degrees): offsets from the scene's centre
for _name, (_dx, _dy) in _DIRS.items():
    _norm = 0.5 / math.hypot(_dx, _dy) * (1 if _dx == 0 or _dy == 0 else 1.2)
    MOTIONS[_name] = Motion(_name, f"is moving {_DIR_WORDS[_name]}", _OPPOSITE[_name])
    _PATHS[_name] = _line(_dx * _norm, _dy * _norm)
MOTIONS.update({
    "circle_cw": Motion("circle_cw", "is moving in a clockwise circle", "circle_ccw"),
    "circle_ccw": Motion("circle_ccw", "is moving in a counterclockwise circle", "circle_cw"),
    "zigzag_right": Motion("zigzag_right", "is zigzagging to the right", "zigzag_left"),
    "zigzag_left": Motion("zigzag_left", "is zigzagging to the left", "zigzag_right"),
    "bounce": Motion("bounce", "is bouncing", "bounce"),
    "fall": Motion("fall", "is falling", "rise"),
    "rise": Motion("rise", "is rising", "fall"),
    "grow": Motion("grow", "is growing", "shrink"),
    "shrink": Motion("shrink", "is shrinking", "grow"),
    "rotate_cw": Motion("rotate_cw", "is rotating clockwise", "rotate_ccw"),
    "rotate_ccw": Motion("rotate_ccw", "is rotating counterclockwise", "rotate_cw"),
})
_PATHS.update({  # y grows downwards, so a clockwise circle on screen has increasing angle
    "circle_cw": lambda t: (0.22 * math.cos(2 * math.pi * t - math.pi / 2),
                            0.22 * math.sin(2 * math.pi * t - math.pi / 2), 1.0, 0.0),
    "zigzag_right": lambda t: (0.5 * (t - 0.5), 0.16 * (1 - 4 * abs(((2 * t) % 1) - 0.5)) - 0.08, 1.0, 0.0),
    "bounce": lambda t: (0.0, 0.2 - 0.45 * abs(math.sin(2 * math.pi * t)), 1.0, 0.0),
    "fall": lambda t: (0.0, -0.3 + 0.6 * t * t, 1.0, 0.0),
    "grow": lambda t: (0.0, 0.0, 0.5 + 1.0 * t, 0.0),
    "rotate_cw": lambda t: (0.0, 0.0, 1.0, 180.0 * t),
})
for _name, _m in MOTIONS.items():  # the rest are their partners played backwards
    if _name not in _PATHS:
        _PATHS[_name] = (lambda f: (lambda t: f(1 - t)))(_PATHS[_m.reverse])


@dataclass(frozen=True)
class Object:
    shape: str
    colour: str
    size: float = 0.17  # radius, frame units
    offset: tuple[float, float] = (0.0, 0.0)  # where it sits relative to the scene centre


@dataclass(frozen=True)
class Scene:
    objects: tuple[Object, ...]
    background: str
    motion: str
    centre: tuple[float, float] = (0.5, 0.5)

    def caption(self) -> str:
        return caption(self)

    def invariant_caption(self) -> str:
        return caption(self, appearance=False)


def caption(scene: Scene, appearance: bool = True) -> str:
    names = [f"{o.colour} {o.shape}" if appearance else o.shape for o in scene.objects]
    subject = " and ".join(f"{'an' if n[0] in 'aeiou' else 'a'} {n}" for n in names)
    phrase = MOTIONS[scene.motion].phrase
    if len(names) > 1:
        phrase = phrase.replace("is ", "are ", 1)
    text = f"{subject} {phrase}"
    if appearance:
        text += f" on a {scene.background} background"
    return text


def _caption_pattern() -> re.Pattern:
    obj = rf"an? (?:(?:{'|'.join(COLOURS)}) )?(?:{'|'.join(SHAPES)})"
    phrases = "|".join(re.escape(m.phrase[3:]) for m in sorted(MOTIONS.values(), key=lambda m: -len(m.phrase)))
    return re.compile(rf"^(?P<subject>{obj}(?: and {obj})?) (?:is|are) (?P<phrase>{phrases})"
                      rf"(?: on an? (?P<background>{'|'.join(BACKGROUNDS)}) background)?\.?$")


_CAPTION_RE = _caption_pattern()


def parse_caption(text: str) -> dict | None:
    """{objects: [(colour or None, shape)], motion, background or None} from a caption of this grammar; None
    when the text is not one."""
    m = _CAPTION_RE.match(" ".join(text.lower().split()))
    if not m:
        return None
    objects = []
    for part in m.group("subject").split(" and "):
        words = part.split()[1:]
        objects.append((words[0] if len(words) == 2 else None, words[-1]))
    motion = next(n for n, mo in MOTIONS.items() if mo.phrase[3:] == m.group("phrase"))
    return {"objects": objects, "motion": motion, "background": m.group("background")}


# rendering -------------------------------------------------------------------------------------------------
def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    a = math.radians(angle)
    if shape == "square":
        pts = [(math.cos(a + math.pi / 4 + k * math.pi / 2), math.sin(a + math.pi / 4 + k * math.pi / 2))
               for k in range(4)]
        pts = [(x * 0.92, y * 0.92) for x, y in pts]  # a square of the same area feel as the circle
    elif shape == "triangle":
        pts = [(math.cos(a - math.pi / 2 + k * 2 * math.pi / 3), math.sin(a - math.pi / 2 + k * 2 * math.pi / 3))
               for k in range(3)]
        pts = [(x * 1.15, y * 1.15 + 0.15) for x, y in pts]
    elif shape == "star":
        pts = [((1.2 if k % 2 == 0 else 0.5) * math.cos(a - math.pi / 2 + k * math.pi / 5),
                (1.2 if k % 2 == 0 else 0.5) * math.sin(a - math.pi / 2 + k * math.pi / 5)) for k in range(10)]
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return [(cx + r * x, cy + r * y) for x, y in pts]


def background_image(name: str, size: int) -> Image.Image:
    if name in PLAIN_BACKGROUNDS:
        return Image.new("RGB", (size, size), PLAIN_BACKGROUNDS[name])
    a, b = TEXTURES[name]
    yy, xx = np.mgrid[0:size, 0:size] * 8 // size
    pattern = (xx % 2) if name == "striped" else ((xx + yy) % 2)
    arr = np.where(pattern[..., None] == 0, np.array(a, np.uint8), np.array(b, np.uint8)).astype(np.uint8)
    return Image.fromarray(arr)


@dataclass
class Rendered:
    frames: np.ndarray  # uint8 T×S×S×3
    truth: list[list[dict]] = field(default_factory=list)  # per frame, per object: shape, colour, x, y, radius, angle


def object_states(scene: Scene, num_frames: int) -> list[list[dict]]:
    path = _PATHS[scene.motion]
    states = []
    for i in range(num_frames):
        dx, dy, scale, angle = path(i / (num_frames - 1) if num_frames > 1 else 0.0)
        states.append([{"shape": o.shape, "colour": o.colour, "x": scene.centre[0] + o.offset[0] + dx,
                        "y": scene.centre[1] + o.offset[1] + dy, "radius": o.size * scale, "angle": angle}
                       for o in scene.objects])
    return states


def draw_frame(background: Image.Image, objects: list[dict], size: int, supersample: int = 4) -> np.ndarray:
    """One frame: the objects (states as object_states gives them) drawn at supersample× on the background
    (already that large) and box-filtered down, so edges are anti-aliased."""
    big = size * supersample
    im = background.copy()
    draw = ImageDraw.Draw(im)
    for s in objects:
        cx, cy, r = s["x"] * big, s["y"] * big, s["radius"] * big
        if s["shape"] == "circle":
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=COLOURS[s["colour"]])
        else:
            draw.polygon(_polygon(s["shape"], cx, cy, r, s["angle"]), fill=COLOURS[s["colour"]])
    return np.asarray(im.resize((size, size), Image.BOX))


def render(scene: Scene, num_frames: int = 15, size: int = 32, supersample: int = 4) -> Rendered:
    """The scene's frames, uint8 T×size×size×3, with the ground truth."""
    bg = background_image(scene.background, size * supersample)
    states = object_states(scene, num_frames)
    return Rendered(np.stack([draw_frame(bg, objs, size, supersample) for objs in states]), states)


# sampling --------------------------------------------------------------------------------------------------
def random_scene(rng: np.random.Generator, motions=None, two_objects: float = 0.15, backgrounds=BACKGROUNDS,
                 weights: dict[str, float] | None = None) -> Scene:
    """A random scene; `motions` restricts the motion names, `weights` makes some rarer (default 1 each)."""
    names = list(motions or MOTIONS)
    p = np.array([(weights or {}).get(n, 1.0) for n in names], float)
    motion = names[rng.choice(len(names), p=p / p.sum())]
    background = backgrounds[rng.integers(len(backgrounds))]
    n = 2 if rng.random() < two_objects else 1
    colours = rng.permutation(list(COLOURS))[:n]
    objects = []
    for k in range(n):
        size = float(rng.uniform(0.15, 0.2)) * (0.8 if n == 2 else 1.0)
        offset = (0.0, 0.0) if n == 1 else ((-0.17, -0.17) if k == 0 else (0.17, 0.17))
        objects.append(Object(SHAPES[rng.integers(len(SHAPES))], str(colours[k]), size, offset))
    jitter = rng.uniform(-0.06, 0.06, 2)
    return Scene(tuple(objects), background, motion, (0.5 + float(jitter[0]), 0.5 + float(jitter[1])))


def with_appearance(scene: Scene, colours: list[str], shapes: list[str], background: str) -> Scene:
    """The same motion and layout with other colours, shapes and background (a target of a benchmark case)."""
    objects = tuple(replace(o, colour=c, shape=s) for o, c, s in zip(scene.objects, colours, shapes))
    return replace(scene, objects=objects, background=background)
