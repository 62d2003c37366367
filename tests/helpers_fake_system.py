"""A stand-in for an external video system: writes a known clip (frame i is gray 10·i + seed), or fails, hangs,
writes garbage or nothing. Prints the prompt it received so tests can see it arrived as one argument."""

import argparse
import sys
import time
from fractions import Fraction

import av
import numpy as np

p = argparse.ArgumentParser()
for name in ("--reference", "--prompt", "--seed", "--out"):
    p.add_argument(name, required=True)
p.add_argument("--mode", default="ok", choices=["ok", "fail", "hang", "corrupt", "nothing"])
p.add_argument("--frames", type=int, default=12)
p.add_argument("--fps", type=int, default=24)
args = p.parse_args()
print(f"prompt={args.prompt!r} reference_exists={__import__('os').path.exists(args.reference)}", flush=True)
if args.mode == "fail":
    print("RuntimeError: CUDA out of memory (simulated)", flush=True)
    sys.exit(3)
if args.mode == "hang":
    time.sleep(600)
if args.mode == "corrupt":
    open(args.out, "wb").write(b"this is not a video")
if args.mode in ("corrupt", "nothing"):
    sys.exit(0)
with av.open(args.out, mode="w", format="mp4") as container:
    stream = container.add_stream("libx264", rate=Fraction(args.fps))
    stream.width, stream.height, stream.pix_fmt = 56, 40, "yuv420p"
    stream.options = {"crf": "0"}
    for i in range(args.frames):
        frame = np.full((40, 56, 3), 10 * i + int(args.seed), np.uint8)
        container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
    container.mux(stream.encode(None))
