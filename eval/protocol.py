"""Videos made elsewhere (`precomputed:DIR`, external systems run or ingested) under the benchmark's protocol.

The protocol of a case is its reference clip as the benchmark loads it: the manifest's `frames` and `fps` (else
the clip's own), and the manifest's `size: [H, W]` (else the clip's own size). A video that differs from it is
brought to it by one rule, recorded with the result, or refused in one line (`eval.run --outside-videos
refuse`):

- time: the protocol's frame count taken at uniformly spaced positions over the whole video (first and last
  frames kept, nearest frame, so frames repeat when upsampling), played at the protocol's fps;
- space: frames scaled to cover the protocol's size with their aspect ratio kept (area filter when shrinking,
  bilinear when enlarging), then centre-cropped.

The record keeps the video's original frames, fps and size and what was changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eval.errors import UserError
from eval.video import Video, sample_indices

RULE = ("time: uniform nearest-frame positions over the whole output, first and last kept, at the protocol fps; "
        "space: scale to cover keeping the aspect ratio (area down, bilinear up), centre crop")
POLICIES = ("resample", "refuse")


@dataclass(frozen=True)
class Protocol:
    frames: int
    fps: float
    size: tuple[int, int]  # (height, width)

    def describe(self) -> str:
        return f"{self.size[0]}×{self.size[1]}, {self.frames} frames at {self.fps:g} fps"

    def differences(self, frames: int, fps: float, size) -> dict:
        """{what: [video's, protocol's]} for what a video of this geometry would have changed."""
        changed = {}
        if frames != self.frames:
            changed["frames"] = [frames, self.frames]
        if abs(fps - self.fps) > 1e-6:
            changed["fps"] = [fps, self.fps]
        if tuple(size) != tuple(self.size):
            changed["size"] = [list(size), list(self.size)]
        return changed


def case_protocol(case, reference: Video, frames: int | None = None, fps: float | None = None,
                  size: tuple[int, int] | None = None) -> Protocol:
    """The protocol of a case (its reference as loaded, the manifest's size); `frames`, `fps` and `size` override
    it (an external system's config may)."""
    size = size or case.size or reference.size
    return Protocol(int(frames or reference.num_frames), float(fps or reference.fps), tuple(size))


def resize_cover(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale T×h×w×3 frames to cover height×width keeping the aspect ratio, then centre-crop."""
    import cv2

    t, h, w, _ = frames.shape
    scale = max(height / h, width / w)
    nh, nw = max(height, round(h * scale)), max(width, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out = np.stack([cv2.resize(f, (nw, nh), interpolation=interp) for f in frames])
    top, left = (nh - height) // 2, (nw - width) // 2
    return np.ascontiguousarray(out[:, top:top + height, left:left + width])


def to_protocol(video: Video, protocol: Protocol) -> tuple[Video, dict | None]:
    """Apply the rule; returns the video and what was changed (None when nothing)."""
    changed = protocol.differences(video.num_frames, video.fps, video.size)
    out = video.frames
    if "frames" in changed:
        out = out[sample_indices(video.num_frames, protocol.frames)]
    if "size" in changed:
        out = resize_cover(out, *protocol.size)
    return Video(out, protocol.fps), (changed or None)


def refusal(file, changed: dict, protocol: Protocol) -> UserError:
    parts = ", ".join(f"{k} {_show(v[0])} (the benchmark's: {_show(v[1])})" for k, v in changed.items())
    return UserError(f"{file}: {parts}; the benchmark's protocol is {protocol.describe()} and --outside-videos "
                     "refuse keeps videos made elsewhere as they are or not at all (the default, resample, brings "
                     "them to it)")


def _show(value) -> str:
    return f"{value[0]}×{value[1]}" if isinstance(value, list) else f"{value:g}"


def conform(video: Video, file, protocol: Protocol, policy: str) -> Video:
    """The video under the protocol; under policy `refuse` a video that differs is a UserError."""
    changed = protocol.differences(video.num_frames, video.fps, video.size)
    if changed and policy == "refuse":
        raise refusal(file, changed, protocol)
    return to_protocol(video, protocol)[0]


def what_was_done(frames: int, fps: float, size, protocol: Protocol) -> dict:
    """The provenance fields of a video of this geometry brought to the protocol: its original geometry, what
    was changed, and by which rule."""
    changed = protocol.differences(frames, fps, size)
    return {"original": {"frames": frames, "fps": fps, "size": list(size)}, "resampled": changed or None,
            "rule": RULE if changed else None}
