"""Video I/O: any common container or a folder of numbered frames in, H.264 yuv420p MP4 out.

In memory a video is `uint8 T×H×W×3` plus fps. Files are decoded with PyAV, every frame in order; frame
folders and GIFs go through PIL. Writing goes through PyAV because browsers need H.264 in yuv420p, which
OpenCV's wheel cannot write. Both directions are deterministic: the same frames give the same bytes on any
machine, and the same file the same frames.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from eval.errors import VideoError

VIDEO_SUFFIXES = (".mp4", ".webm", ".gif", ".avi", ".mov", ".mkv", ".m4v")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
DEFAULT_FPS = 8.0


@dataclass
class Video:
    frames: np.ndarray  # uint8, T×H×W×3
    fps: float

    def __post_init__(self):
        f = self.frames
        if not (isinstance(f, np.ndarray) and f.dtype == np.uint8 and f.ndim == 4 and f.shape[-1] == 3):
            shape = getattr(f, "shape", None)
            dtype = getattr(f, "dtype", type(f).__name__)
            raise ValueError(f"a video is a uint8 T×H×W×3 array, got {dtype} of shape {shape}")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")

    @property
    def num_frames(self) -> int:
        return self.frames.shape[0]

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)"""
        return self.frames.shape[1], self.frames.shape[2]

    def sample(self, num_frames: int) -> "Video":
        """The video uniformly resampled to `num_frames` frames; fps scaled so the duration is kept."""
        idx = sample_indices(self.num_frames, num_frames)
        return Video(self.frames[idx], self.fps * num_frames / self.num_frames)


def sample_indices(total: int, num: int) -> list[int]:
    """`num` frame indices spread uniformly over `total` frames, first and last included.

    With num > total, frames repeat (nearest-neighbour upsampling in time)."""
    if total < 1 or num < 1:
        raise ValueError(f"cannot sample {num} frames from {total}")
    if num == 1:
        return [0]
    return [int(round(i * (total - 1) / (num - 1))) for i in range(num)]


def _natural_key(path: Path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def list_frame_files(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)


def _read_frame_folder(folder: Path, fps: float | None) -> Video:
    from PIL import Image

    files = list_frame_files(folder)
    if not files:
        raise VideoError(f"{folder}: folder holds no frames ({', '.join(IMAGE_SUFFIXES)})")
    frames = []
    for f in files:
        try:
            with Image.open(f) as im:
                frames.append(np.asarray(im.convert("RGB")))
        except Exception as e:  # PIL raises many types for a bad image
            raise VideoError(f"{f}: not a readable image ({type(e).__name__}: {e})") from None
        if frames[-1].shape != frames[0].shape:
            raise VideoError(f"{f}: frame size {frames[-1].shape[1]}×{frames[-1].shape[0]} differs from "
                             f"{files[0].name}'s {frames[0].shape[1]}×{frames[0].shape[0]}")
    return Video(np.stack(frames), float(fps or DEFAULT_FPS))


_quiet_lock = threading.Lock()
_quiet_depth = 0
_saved_stderr: int | None = None


@contextlib.contextmanager
def _quiet_stderr():
    """Silence what the C decoders print on fd 2 (their errors are re-raised as one clean line).

    fd 2 is process-wide, so concurrent decoding threads share one redirection: the first in saves and
    redirects, the last out restores."""
    global _quiet_depth, _saved_stderr
    with _quiet_lock:
        if _quiet_depth == 0:
            _saved_stderr = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                os.dup2(_saved_stderr, 2)
                os.close(_saved_stderr)


def _read_gif(path: Path, fps: float | None) -> Video:
    from PIL import Image, ImageSequence

    try:
        with Image.open(path) as im:
            durations = [f.info.get("duration", 0) for f in ImageSequence.Iterator(im)]
            frames = np.stack([np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)])
    except Exception as e:  # PIL raises many types for a bad file
        raise VideoError(f"{path}: not a readable GIF ({type(e).__name__}: {e})") from None
    mean_ms = float(np.mean(durations)) if durations else 0.0
    return Video(frames, float(fps or (1000.0 / mean_ms if mean_ms > 0 else DEFAULT_FPS)))


def _read_container(path: Path, fps: float | None) -> Video:
    """Decode every frame in order with PyAV, one decoder for every file: the same file always gives the same
    frames. (decord's get_batch has been seen to return other frames now and then, dmlc/decord#195, and a
    second decoder as fallback meant a file's pixels depended on which one read it.)"""
    import av
    from av.video.reformatter import VideoReformatter

    if path.stat().st_size == 0:
        raise VideoError(f"{path}: file is empty")
    if path.suffix.lower() == ".gif":
        return _read_gif(path, fps)
    frames = []
    to_rgb = VideoReformatter()  # one colour converter for all frames (a frame's own would be made anew each time)
    try:
        with _quiet_stderr(), av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path}: not a readable video (the file holds no video stream)")
            stream = container.streams.video[0]
            declared = stream.frames or 0
            rate = float(stream.average_rate) if stream.average_rate else 0.0
            try:
                for frame in container.decode(stream):
                    frames.append(to_rgb.reformat(frame, format="rgb24").to_ndarray())
            except av.error.FFmpegError as e:
                raise VideoError(f"{path}: the file is damaged or cut short: decoding stopped after {len(frames)}"
                                 f" of {declared or 'its'} frames (FFmpeg: {_reason(e)})") from None
    except av.error.FFmpegError as e:
        detail = "not a video format the decoder knows, or a damaged file" \
            if isinstance(e, av.error.InvalidDataError) else _reason(e)
        raise VideoError(f"{path}: not a readable video ({detail})") from None
    if not frames:
        raise VideoError(f"{path}: video has no frames" + (f" (its header announces {declared}: the file is cut "
                                                            "short)" if declared else ""))
    if declared > len(frames):
        raise VideoError(f"{path}: the file is cut short: only {len(frames)} of the {declared} frames its header "
                         "announces could be decoded")
    native_fps = rate if np.isfinite(rate) and rate > 0 else DEFAULT_FPS
    return Video(np.ascontiguousarray(np.stack(frames), dtype=np.uint8), float(fps or native_fps))


def _reason(error) -> str:
    """FFmpeg's words for a failure, without the call it came from."""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return text[:1].lower() + text[1:]


def read_video(path: str | os.PathLike, num_frames: int | None = None, fps: float | None = None,
               min_frames: int = 2) -> Video:
    """Read a video file or a folder of numbered frames.

    num_frames: uniformly resample to this many frames. fps: override the container's frame rate (a frame
    folder has none; it defaults to 8). Raises VideoError, one line naming the file, for anything unreadable,
    empty, or shorter than `min_frames`.
    """
    path = Path(path)
    if not path.exists():
        raise VideoError(f"{path}: no such file or folder")
    if path.is_dir():
        video = _read_frame_folder(path, fps)
    elif path.suffix.lower() in IMAGE_SUFFIXES:
        raise VideoError(f"{path}: is a single image; give a video file or a folder of numbered frames")
    else:
        video = _read_container(path, fps)
    if video.num_frames < min_frames:
        raise VideoError(f"{path}: has {video.num_frames} frame(s); at least {min_frames} are needed")
    if num_frames is not None and num_frames != video.num_frames:
        video = Video(video.frames[sample_indices(video.num_frames, num_frames)], video.fps)
    return video


@functools.lru_cache(maxsize=1)
def x264_asm() -> dict:
    """x264's AVX-512 code makes the bitstream of the same frames vary from call to call (libx264 of PyAV 18:
    5 different files in 30 encodes of one clip, decoding up to 17 levels apart), so on a CPU that has AVX-512
    x264 is held to its AVX2 code, which every such CPU runs and which encodes the same file every time."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    return {"x264-params": "asm=AVX2"} if " avx512f" in flags else {}



def write_video(path: str | os.PathLike, video: Video, crf: int = 17) -> Path:
    """Write H.264 yuv420p MP4 (+faststart) atomically: a temp file beside the target, then a rename.

    yuv420p needs even sides: an odd height or width is padded by repeating the last row or column."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = video.frames
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.mp4")
    try:
        with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
            stream = container.add_stream("libx264", rate=Fraction(video.fps).limit_denominator(1001))
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuv420p"
            # x264's automatic thread count follows the machine's cores and changes the bitstream: fix it
            stream.options = {"crf": str(crf), "preset": "medium", "threads": "1", **x264_asm()}
            for i, frame in enumerate(frames):
                picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
                picture.pts = i
                container.mux(stream.encode(picture))
            container.mux(stream.encode(None))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def video_geometry(path: str | os.PathLike, decode: bool = False) -> tuple[int, float, tuple[int, int]]:
    """(frames, fps, (height, width)) of a video file: from its header where it declares its frame count,
    else (or with `decode`) by reading it, which also proves every frame decodes. A VideoError names the file."""
    path = Path(path)
    if not decode and path.is_file() and path.suffix.lower() != ".gif":
        import av

        try:
            with _quiet_stderr(), av.open(str(path)) as container:
                stream = container.streams.video[0] if container.streams.video else None
                if stream is not None and stream.frames and stream.average_rate:
                    ctx = stream.codec_context
                    return int(stream.frames), float(stream.average_rate), (ctx.height, ctx.width)
        except av.error.FFmpegError:
            pass  # reading it says what is wrong
    video = read_video(path, min_frames=1)
    return video.num_frames, video.fps, video.size
