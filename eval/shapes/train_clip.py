"""python -m eval.shapes.train_clip [--steps 1200] [--out eval/shapes/weights/shapes-clip.safetensors]

Train the shapes world's CLIP (an open_clip model from the config shapes-clip.json beside the weights):
contrastive on single frames of random scenes and their captions, with the degradations generated videos
show (blur from upscaling, noise) so the metric stays meaningful on model outputs. Writes fp16 safetensors
that `--clip-model eval/shapes/weights/shapes-clip.json --clip-pretrained …safetensors` (the shapes
benchmark's default) loads. CPU is enough: a few minutes.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from eval.errors import cli_main
from eval.shapes.world import background_image, draw_frame, object_states, random_scene

WEIGHTS = Path(__file__).resolve().parent / "weights"
CONFIG = WEIGHTS / "shapes-clip.json"
CHECKPOINT = WEIGHTS / "shapes-clip.safetensors"
SIZE = 32


def sample_batch(rng: np.random.Generator, n: int) -> tuple[torch.Tensor, list[str]]:
    """n degraded frames (uint8 n×32×32×3) from random scenes at random times, and their captions."""
    frames, captions = [], []
    for _ in range(n):
        scene = random_scene(rng)
        states = object_states(scene, 15)[rng.integers(15)]
        frame = draw_frame(background_image(scene.background, SIZE * 4), states, SIZE).astype(np.float32)
        if rng.random() < 0.5:  # the softness of a 2× upscale
            t = torch.from_numpy(frame).permute(2, 0, 1)[None]
            t = F.interpolate(F.avg_pool2d(t, 2), scale_factor=2, mode="bilinear", align_corners=False)
            frame = t[0].permute(1, 2, 0).numpy()
        frame = frame + rng.normal(0, rng.uniform(0, 12), frame.shape)
        frames.append(np.clip(frame, 0, 255).round().astype(np.uint8))
        captions.append(scene.caption())
    return torch.from_numpy(np.stack(frames)), captions


@cli_main
def main(argv=None):
    import open_clip
    from safetensors.torch import save_file

    from eval.metrics.clip import Preprocess

    p = argparse.ArgumentParser(prog="python -m eval.shapes.train_clip", description=__doc__.split("\n\n")[1])
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=CHECKPOINT)
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    open_clip.add_model_config(CONFIG)
    model = open_clip.create_model(CONFIG.stem)
    tokenizer = open_clip.get_tokenizer(CONFIG.stem)
    preprocess = Preprocess(dict(model.visual.preprocess_cfg))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=args.steps, pct_start=0.1)
    bar = tqdm(range(args.steps), desc="shapes clip")
    for step in bar:
        frames, captions = sample_batch(np.random.default_rng([args.seed, step]), args.batch_size)
        image = F.normalize(model.encode_image(preprocess(frames, torch.float32)), dim=-1)
        text = F.normalize(model.encode_text(tokenizer(captions)), dim=-1)
        logits = model.logit_scale.exp() * image @ text.T
        # captions repeat within a batch: every matching caption is a positive
        same = torch.tensor([[a == b for b in captions] for a in captions], dtype=torch.float32)
        target = same / same.sum(1, keepdim=True)
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, 4.6052)
        bar.set_postfix(loss=f"{float(loss):.3f}")
    state = {k: v.detach().half().contiguous() for k, v in model.state_dict().items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    save_file(state, str(tmp))
    os.replace(tmp, args.out)
    print(f"shapes CLIP written to {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
