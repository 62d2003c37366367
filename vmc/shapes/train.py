"""python -m vmc.shapes.train --work runs/shapes-train [--stages keyframes,interp,sr1] [--minutes 60]

Train the shapes-world cascade on data generated on the fly (vmc.shapes.data) and export it in the hub layout
the `shapes` backbone loads (show-1-base/, show-1-interpolation/, show-1-sr1/, cascade.json; fp16
safetensors). The models are the project's Show-1 classes at small sizes: a Show1UNet3D per stage and a small
T5 encoder with a word tokenizer built for the domain, trained jointly with the keyframe UNet.

v-prediction (Show-1 itself predicts ε; see PREDICTION) with min-SNR(5) loss weighting and an EMA of the weights
(what is exported); `--prediction` switches a checkpoint's objective, e.g. an ε one to v. The text encoder
trains with the keyframe UNet until `--freeze-text`; the other stages condition on its EMA. Each stage
checkpoints to WORK/<stage>.pt every --save-every steps and resumes from there, so a killed run loses at most
that; a stage ends at --steps or after --minutes, whichever comes first. CPU or CUDA. --pack writes compact
copies of the checkpoints to carry a run to another machine (a GPU): resuming from one warms the learning rate up
again, as its optimiser moments are left out.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from eval.errors import UserError, cli_main
from vmc.configs import load_config
from vmc.prediction import PREDICTION_TYPES, check_prediction_type, training_target
from vmc.shapes.data import (BASE_SIZE, HELD_OUT, NUM_KEYFRAMES, SR_SIZE, VOCABULARY, check_held_out, downsample,
                             keyframe_view, sample_clips, sample_reversal_pairs)
from vmc.shapes.probe import log_loss_ratio

STAGES = ("keyframes", "interp", "sr1")
SHIPPED = Path(__file__).resolve().parent / "weights"
T5 = dict(d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4, dropout_rate=0.0)
UNET = dict(out_channels=3, attention_head_dim=32, cross_attention_dim=64, encoder_hid_dim=T5["d_model"],
            addition_embed_type_num_heads=4, norm_num_groups=16, layers_per_block=1, block_out_channels=[32, 32, 64],
            sample_size=BASE_SIZE, down_block_types=["ResnetDownsampleBlock3D", "SimpleCrossAttnDownBlock3D",
                                                      "SimpleCrossAttnDownBlock3D"],
            up_block_types=["SimpleCrossAttnUpBlock3D", "SimpleCrossAttnUpBlock3D", "ResnetUpsampleBlock3D"])
STAGE_UNET = {
    "keyframes": dict(in_channels=3),
    "interp": dict(in_channels=7),
    "sr1": dict(in_channels=6, class_embed_type="timestep", sample_size=SR_SIZE, resnet_skip_time_act=True,
                resnet_out_scale_factor=1.4142271248762552, mid_block_scale_factor=1.4142271248762552),
}
# what a fresh run's UNets learn to output. At this scale an ε-prediction UNet cannot set a frame's mean
# colour near the top of the cosine schedule (ᾱ ≈ 2e-9 at t = 999, and x₀ = (x_t − √(1−ᾱ)·ε̂)/√ᾱ magnifies
# any error in ε̂): it drew backgrounds at random. v-prediction learns x₀ directly there (Salimans & Ho 2022;
# Lin et al. 2024).
PREDICTION = "v_prediction"
DIRS = {"keyframes": "show-1-base", "interp": "show-1-interpolation", "sr1": "show-1-sr1"}
SR_MAX_NOISE_LEVEL = 350  # conditioning noise levels seen in training (inference uses settings.sr1_noise_level)
# keyframe guidance 3: on the v keyframe UNet, 24 plain prompts gave oracle_appearance 0.86 at 3, 0.81 at 5 and
# 0.78 at 7.5 (higher guidance overshoots the colours, and dynamic thresholding then pulls them to grey)
# inverted-start guidance (vmc, tav, inversion): from a DDIM-inverted reference, guidance 3 kept the
# reference's background (earlier weights, seeds 0-2: vmc's oracle_appearance 0.565 at 3, 0.627 at 12); 4.5
# chosen for the shipped weights on shapes-dev with the vmc tuning below (seed 0; oracle_motion / appearance 0.80 /
# 0.80 at 4.5, 0.78 / 0.78 at 6, 0.68 / 0.74 at 9)
SETTINGS = dict(num_frames=NUM_KEYFRAMES, height=BASE_SIZE, width=BASE_SIZE, keyframe_steps=16, keyframe_guidance=3.0,
                inverted_keyframe_guidance=4.5,
                interp_new_per_pair=1, interp_steps=8, interp_guidance=1.0, sr1_scale=SR_SIZE // BASE_SIZE,
                sr1_window=8, sr1_stride=7, sr1_steps=6, sr1_guidance=1.0, sr1_noise_level=100,
                keep_models=True)
# per-clip tuning at this scale, both chosen on shapes-dev with the earlier weights (seed 0, guidance 9;
# oracle_motion): vmc 200 steps at 4e-3 (0.88; 100 at 5e-4 gave 0.61, too little to outweigh a held-out caption),
# tav 200 at 1e-3 (0.82; 0.61); both kept for the shipped weights at guidance 4.5 (vmc 0.80, tav 0.93; the
# alternatives tried are in docs/SHAPES.md)
ADAPTATION = {"vmc": dict(steps=200, lr=4e-3, inversion_steps=16),
              "tav": dict(steps=200, lr=1e-3, inversion_steps=16)}


# the keyframe stage's reversal margin: on `clips` extra clips per step at t >= min_t, a hinge that asks the loss
# under the caption of the time-reversed motion to exceed the loss under the true caption by a factor e^margin
# (what vmc.shapes.probe measures). Without it the UNet learned the axis of a straight line from its caption but
# not the sense ("left" and "right" gave the same loss). --neighbour-share aims part of it at the confusion that
# remained, a line drawn as the line 45 degrees off: the wrong caption then names that line instead.
REVERSAL = dict(clips=2, min_t=700, margin=0.3)


def unet_config(stage: str) -> dict:
    return {**load_config("show1-base-unet"), **UNET, **STAGE_UNET[stage]}


def scheduler_config() -> dict:
    return dict(load_config("show1-base-scheduler"))


def stored_prediction(state: dict) -> str:
    """What a checkpoint's UNet predicts (checkpoints from before v-prediction hold ε)."""
    return state.get("prediction_type", "epsilon")


class Stage:
    """One stage's model(s), optimiser and EMA, resumable from WORK/<stage>.pt."""

    def __init__(self, name: str, work: Path, device: torch.device, lr: float, text=None, freeze_text: bool = False,
                 prediction: str | None = None, init: Path | None = None, reversal_weight: float = 0.0,
                 neighbour_share: float = 0.0, held_out: tuple[str, ...] = HELD_OUT):
        from diffusers import DDPMScheduler
        from transformers import T5Config, T5EncoderModel

        from vmc.models import Show1UNet3D
        from vmc.pipelines.text import word_tokenizer

        self.name, self.work, self.device = name, work, device
        self.reversal_weight = reversal_weight if name == "keyframes" else 0.0
        self.neighbour_share, self.held_out = neighbour_share, tuple(held_out)
        self.never_trained = self.held_out
        self.path = work / f"{name}.pt"
        torch.manual_seed(0)
        self.unet = Show1UNet3D.from_config(unet_config(name)).to(device)
        self.tokenizer = word_tokenizer(VOCABULARY)
        if self.path.is_file():
            state = torch.load(self.path, map_location=device, weights_only=False)
        else:
            state = exported_state(name, init) if init else None
        self.text_frozen = name != "keyframes" or freeze_text or bool(state and state.get("text_frozen"))
        if name == "keyframes":
            self.text = T5EncoderModel(T5Config(vocab_size=len(self.tokenizer), **T5)).to(device)
        else:
            self.text = text.to(device).eval().requires_grad_(False)
        self.modules = {"unet": self.unet, **({"text": self.text} if name == "keyframes" else {})}
        self.ema = {k: copy.deepcopy(m).eval().requires_grad_(False) for k, m in self.modules.items()}
        params = list(self.unet.parameters()) + ([] if self.text_frozen else list(self.text.parameters()))
        self.opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-2)
        self.lr = lr
        self.noising = DDPMScheduler(beta_schedule="squaredcos_cap_v2")
        self.step, self.history, self.warm_from = 0, [], 0
        stored = stored_prediction(state) if state else None
        self.prediction = stored or check_prediction_type(prediction or PREDICTION)
        self.objective_since = state.get("objective_since", 0) if state else 0
        if state:
            for k, m in self.modules.items():
                m.load_state_dict(state["model"][k])
                self.ema[k].load_state_dict(state["ema"][k])
            opt = state["opt"] or self.opt.state_dict()
            if len(opt["param_groups"][0]["params"]) != len(params):  # the text encoder was frozen now
                opt = {"state": {i: v for i, v in opt["state"].items() if i < len(params)},
                       "param_groups": [{**opt["param_groups"][0], "params": list(range(len(params)))}]}
            self.opt.load_state_dict(opt)
            self.step, self.history = state["step"], state["history"]
            drawn = tuple(state.get("data_held_out", state.get("held_out", HELD_OUT)))
            if self.path.is_file() and set(drawn) != set(self.held_out):
                raise UserError(f"{self.path}: this run holds out {', '.join(drawn)}; resuming it with --held-out "
                                f"{','.join(self.held_out)} would mix two data sets (use another --work)")
            # motions this stage has never been trained on, over its whole history (weights from --init included)
            self.never_trained = tuple(m for m in state.get("held_out", HELD_OUT) if m in self.held_out)
            if not opt["state"]:  # a checkpoint saved without optimiser moments: warm the learning rate up again
                self.warm_from = self.step
        if stored and prediction and prediction != stored:
            # a new objective from here on: the learning rate warms up and the EMA starts averaging afresh
            print(f"shapes {name}: switching from {self.prediction} to {prediction} at step {self.step}")
            self.prediction, self.objective_since = check_prediction_type(prediction), self.step
            self.warm_from = self.step
        self.noise = DDPMScheduler.from_config(scheduler_config(), prediction_type=self.prediction)
        self.alphas = self.noise.alphas_cumprod.to(device)
        if name == "keyframes" and self.text_frozen:
            # from here on the UNet learns against the EMA encoder, the one the other stages load
            self.text.load_state_dict(self.ema["text"].state_dict())
            self.text.eval().requires_grad_(False)

    def save(self):
        tmp = self.path.with_suffix(".tmp")
        torch.save({"step": self.step, "history": self.history, "opt": self.opt.state_dict(),
                    "text_frozen": self.text_frozen, "prediction_type": self.prediction,
                    "objective_since": self.objective_since, "data_held_out": list(self.held_out),
                    "held_out": list(self.never_trained),
                    "model": {k: m.state_dict() for k, m in self.modules.items()},
                    "ema": {k: m.state_dict() for k, m in self.ema.items()}}, tmp)
        os.replace(tmp, self.path)

    def embed(self, captions: list[str], encoder) -> torch.Tensor:
        from vmc.pipelines.text import T5PromptEncoder

        tokens = self.tokenizer([T5PromptEncoder.preprocess(c) for c in captions], padding="max_length",
                                max_length=T5PromptEncoder.max_length, truncation=True, return_tensors="pt")
        return encoder(tokens.input_ids.to(self.device), attention_mask=tokens.attention_mask.to(self.device))[0]

    def batch(self, rng, batch_size: int):
        """(target x0, conditioning channels or None, class labels or None, captions) for this stage."""
        if self.name == "keyframes":
            clips, captions = sample_clips(rng, batch_size, held_out=self.held_out)
            return keyframe_view(clips), None, None, captions
        if self.name == "interp":
            from vmc.pipelines.interpolation import interpolation_condition

            n = max(1, batch_size // 4)
            clips, captions = sample_clips(rng, n, held_out=self.held_out)
            low = downsample(clips, BASE_SIZE)
            cond = interpolation_condition(low[:, :, ::2], 1)  # (n·7, 4, 3, H, W)
            windows = torch.stack([low[:, :, 2 * i:2 * i + 3] for i in range(NUM_KEYFRAMES - 1)], 1).flatten(0, 1)
            pick = torch.from_numpy(rng.permutation(len(windows))[:batch_size])
            caps = [captions[i // (NUM_KEYFRAMES - 1)] for i in pick.tolist()]
            return windows[pick], cond[pick], None, caps
        from vmc.pipelines.super_resolution import upscale_frames

        clips, captions = sample_clips(rng, batch_size, held_out=self.held_out)
        start = torch.from_numpy(rng.integers(0, 2, batch_size) * 7)
        target = torch.stack([c[:, s:s + 8] for c, s in zip(clips, start.tolist())])
        cond = upscale_frames(downsample(target, BASE_SIZE), SR_SIZE, SR_SIZE)
        levels = torch.from_numpy(rng.integers(0, SR_MAX_NOISE_LEVEL, batch_size))
        g = torch.Generator().manual_seed(int(rng.integers(2**31)))
        cond = self.noising.add_noise(cond, torch.randn(cond.shape, generator=g), levels)
        clean_first = torch.from_numpy(rng.random(batch_size) < 0.5)  # as later windows (and IF-style SR) see it
        cond[clean_first, :, 0] = target[clean_first, :, 0]
        return target, cond, levels, captions

    def text_embeddings(self, captions: list[str]) -> torch.Tensor:
        with torch.set_grad_enabled(not self.text_frozen):
            return self.embed(captions, self.text)

    def noised(self, rng, x0: torch.Tensor, low_t: int = 0):
        """(noise, t, noisy x0) with t uniform in [low_t, T), reproducible from rng."""
        g = torch.Generator().manual_seed(int(rng.integers(2**31)))
        noise = torch.randn(x0.shape, generator=g).to(self.device)
        t = torch.from_numpy(rng.integers(low_t, self.noise.config.num_train_timesteps, len(x0))).to(self.device)
        return noise, t, self.noise.add_noise(x0, noise, t)

    def train_step(self, rng, batch_size: int) -> float:
        x0, cond, labels, captions = self.batch(rng, batch_size)
        x0 = x0.to(self.device)
        text = self.text_embeddings(captions)
        noise, t, noisy = self.noised(rng, x0)
        inp = noisy if cond is None else torch.cat([noisy, cond.to(self.device)], 1)
        pred = self.unet(inp, t, text, class_labels=labels.to(self.device) if labels is not None else None).sample
        snr = self.alphas[t] / (1 - self.alphas[t])
        # min-SNR-5: the x₀-error weight min(SNR, 5), expressed for the output's own error
        weight = torch.clamp(snr, max=5.0) / (snr if self.prediction == "epsilon" else snr + 1)
        target = training_target(x0, noise, self.alphas[t], self.prediction)
        loss = (F.mse_loss(pred[:, :3].float(), target, reduction="none").mean((1, 2, 3, 4)) * weight).mean()
        if self.reversal_weight:
            loss = loss + self.reversal_weight * self.reversal_margin(rng)
        warmup = min(1.0, (self.step - self.warm_from + 1) / 200)
        for group in self.opt.param_groups:
            group["lr"] = self.lr * warmup
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in self.opt.param_groups for p in g["params"]], 1.0)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        since = self.step - self.objective_since
        decay = min(0.999, (1 + since) / (10 + since))
        with torch.no_grad():
            for k, m in self.modules.items():
                if k == "text" and self.text_frozen:
                    continue
                for pe, p in zip(self.ema[k].parameters(), m.parameters()):
                    pe.lerp_(p, 1 - decay)
        self.step += 1
        return float(loss.detach())

    def reversal_margin(self, rng) -> torch.Tensor:
        """mean over REVERSAL["clips"] clips of max(0, margin - log(L_reversed / L_true)): the losses of one noisy
        clip under its own caption and under its time-reversed motion's caption (or, for --neighbour-share of
        the straight lines, a line 45 degrees off), at a high noise level, where the caption has to tell the
        model which way the motion runs."""
        clips, captions, wrong = sample_reversal_pairs(rng, REVERSAL["clips"], neighbour=self.neighbour_share,
                                                        held_out=self.held_out)
        x0 = keyframe_view(clips).to(self.device)
        text = self.text_embeddings(captions + wrong)
        noise, t, noisy = self.noised(rng, x0, REVERSAL["min_t"])
        target = training_target(x0, noise, self.alphas[t], self.prediction)
        return F.relu(REVERSAL["margin"] - log_loss_ratio(self.unet, noisy, t, text, target)).mean()

    def run(self, steps: int, minutes: float, batch_size: int, seed: int, save_every: int):
        start = time.monotonic()
        bar = tqdm(total=steps, initial=self.step, desc=f"shapes {self.name}")
        while self.step < steps and time.monotonic() - start < minutes * 60:
            rng = np.random.default_rng([seed, STAGES.index(self.name), self.step])  # resumable data stream
            self.history.append(self.train_step(rng, batch_size))
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(self.history[-50:]):.4f}")
            if self.step % save_every == 0:
                self.save()
        bar.close()
        self.save()


def export(work: Path, out: Path):
    """Write the EMA weights of every trained stage (fp16 safetensors) in the hub layout, plus cascade.json.
    The interpolation and SR stages were trained on the EMA text encoder's embeddings, so EMA throughout."""
    from diffusers import DDPMScheduler, DPMSolverMultistepScheduler
    from transformers import T5Config, T5EncoderModel

    from vmc.models import Show1UNet3D
    from vmc.pipelines.text import word_tokenizer

    missing = [s for s in STAGES if not (work / f"{s}.pt").is_file()]
    if missing:
        raise UserError(f"{work}: no checkpoint for stage(s) {', '.join(missing)}: train them first")
    out.mkdir(parents=True, exist_ok=True)
    trained, held_out = {}, {}
    for stage in STAGES:
        state = torch.load(work / f"{stage}.pt", map_location="cpu", weights_only=False)
        trained[stage], held_out[stage] = state["step"], state.get("held_out", list(HELD_OUT))
        folder = out / DIRS[stage]
        unet = Show1UNet3D.from_config(unet_config(stage))
        unet.load_state_dict(state["ema"]["unet"])
        unet.half().save_pretrained(folder / "unet")
        DPMSolverMultistepScheduler.from_config(
            scheduler_config(), prediction_type=stored_prediction(state)).save_pretrained(folder / "scheduler")
        if stage == "keyframes":
            tokenizer = word_tokenizer(VOCABULARY)
            tokenizer.save_pretrained(folder / "tokenizer")
            text = T5EncoderModel(T5Config(vocab_size=len(tokenizer), **T5))
            text.load_state_dict(state["ema"]["text"])
            text.half().save_pretrained(folder / "text_encoder")
        if stage == "sr1":
            DDPMScheduler(beta_schedule="squaredcos_cap_v2").save_pretrained(folder / "image_noising_scheduler")
    meta = {"name": "shapes", "settings": SETTINGS, **ADAPTATION,
            "training": {"steps": trained, "held_out": held_out, "weights": "ema",
                         "command": "python -m vmc.shapes.train"}}
    (out / "cascade.json").write_text(json.dumps(meta, indent=2) + "\n")


def exported_state(stage: str, cascade: Path) -> dict:
    """A checkpoint of `stage` (the format Stage saves) made from an exported cascade: its weights as both the
    model and the EMA, no optimiser moments (the learning rate warms up again), so training can go on from
    shipped weights whose checkpoints are gone."""
    from vmc.models import Show1UNet3D

    meta_path, folder = cascade / "cascade.json", cascade / DIRS[stage]
    if not meta_path.is_file() or not (folder / "unet").is_dir():
        raise UserError(f"{cascade}: --init needs an exported cascade (cascade.json and {DIRS[stage]}/unet)")
    meta = json.loads(meta_path.read_text())
    weights = {"unet": Show1UNet3D.from_pretrained(folder / "unet", torch_dtype=torch.float32).state_dict()}
    if stage == "keyframes":
        weights["text"] = exported_text_encoder(cascade).state_dict()
    scheduler = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    return {"step": meta["training"]["steps"][stage], "history": [], "opt": None, "text_frozen": False,
            "held_out": stage_held_out(meta.get("training", {}), stage),
            "prediction_type": scheduler.get("prediction_type", "epsilon"), "objective_since": 0,
            "model": weights, "ema": copy.deepcopy(weights)}


def stage_held_out(training: dict, stage: str) -> list[str]:
    """The motions one stage of an exported cascade was never trained on (cascade.json's training.held_out: one
    list per stage; weights exported before it was recorded were trained without data.HELD_OUT)."""
    held_out = training.get("held_out", HELD_OUT)
    return list(held_out[stage] if isinstance(held_out, dict) else held_out)


def exported_text_encoder(cascade: Path):
    """The text encoder of an exported cascade, in float32."""
    from transformers import T5EncoderModel

    folder = cascade / DIRS["keyframes"] / "text_encoder"
    if not folder.is_dir():
        raise UserError(f"{cascade}: --init needs an exported cascade ({DIRS['keyframes']}/text_encoder is missing)")
    return T5EncoderModel.from_pretrained(folder, torch_dtype=torch.float32)


def _half(modules: dict) -> dict:
    return {k: {n: t.half() if t.is_floating_point() else t for n, t in m.items()} for k, m in modules.items()}


def pack(work: Path, out: Path):
    """Compact copies of the checkpoints in WORK (fp16 weights, no optimiser moments: a quarter of the size), to
    move a run between machines; training resumes from them with a fresh learning-rate warm-up."""
    found = [work / f"{s}.pt" for s in STAGES if (work / f"{s}.pt").is_file()]
    if not found:
        raise UserError(f"{work}: no checkpoint to pack (train a stage first)")
    out.mkdir(parents=True, exist_ok=True)
    for path in found:
        state = torch.load(path, map_location="cpu", weights_only=False)
        state.update(model=_half(state["model"]), ema=_half(state["ema"]),
                     opt={"state": {}, "param_groups": state["opt"]["param_groups"]})
        tmp = (out / path.name).with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, out / path.name)


def load_text_encoder(work: Path, device, init: Path | None = None):
    from transformers import T5Config, T5EncoderModel

    from vmc.pipelines.text import word_tokenizer

    path = work / "keyframes.pt"
    if not path.is_file():
        if init:  # the keyframe stage as exported: its encoder is the one the other stages were trained on
            return exported_text_encoder(init).to(device)
        raise UserError(f"{path}: the interp and sr1 stages use the keyframe stage's text encoder: train it first")
    text = T5EncoderModel(T5Config(vocab_size=len(word_tokenizer(VOCABULARY)), **T5))
    text.load_state_dict(torch.load(path, map_location="cpu", weights_only=False)["ema"]["text"])
    return text.to(device)


@cli_main
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m vmc.shapes.train", description=__doc__.split("\n\n")[1])
    p.add_argument("--work", type=Path, default=Path("runs/shapes-train"), help="checkpoints (resumable)")
    p.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, from {', '.join(STAGES)}")
    p.add_argument("--steps", type=int, default=20000, help="steps per stage")
    p.add_argument("--minutes", type=float, default=math.inf, help="time budget per stage")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=int, default=100)
    p.add_argument("--export", type=Path, default=None,
                   help=f"write the cascade here when done (the shipped weights live in {SHIPPED})")
    p.add_argument("--pack", type=Path, default=None, help="write compact copies of the checkpoints here when done "
                   "(fp16, no optimiser moments), to carry the run to another machine")
    p.add_argument("--freeze-text", action="store_true", help="keyframes: stop training the text encoder (its "
                   "EMA is kept from then on), so the other stages can train on it meanwhile")
    p.add_argument("--prediction", choices=PREDICTION_TYPES, default=None,
                   help=f"what the UNets learn to output (a fresh run: {PREDICTION}); a checkpoint keeps its own "
                   "unless this names the other, which switches its objective from there on")
    p.add_argument("--init", type=Path, default=None, help="start stages that have no checkpoint in --work from "
                   f"an exported cascade's weights (e.g. {SHIPPED}), to train shipped weights further")
    p.add_argument("--reversal-margin", type=float, default=0.0, help="keyframes: weight of the reversal margin "
                   f"(a hinge asking the time-reversed motion's caption to fit a clip worse than its own; {REVERSAL})")
    p.add_argument("--neighbour-share", type=float, default=0.0, help="keyframes, with --reversal-margin: the "
                   "share of straight-line clips whose wrong caption is a line 45 degrees off instead of the reversed one")
    p.add_argument("--held-out", default=",".join(HELD_OUT), help="comma-separated motions to leave out of "
                   "the training data (recorded in cascade.json; the benchmark's held-out cases should be among "
                   f"them); default {','.join(HELD_OUT)}")
    p.add_argument("--device", default=None)
    args = p.parse_args(argv)
    held_out = check_held_out([m.strip() for m in args.held_out.split(",") if m.strip()])
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise UserError(f"--stages: unknown stage(s) {', '.join(bad)}; stages are {', '.join(STAGES)}")
    if args.reversal_margin < 0:
        raise UserError(f"--reversal-margin: {args.reversal_margin} is negative (it weighs a penalty)")
    if not 0 <= args.neighbour_share <= 1:
        raise UserError(f"--neighbour-share: {args.neighbour_share} is not a share between 0 and 1")
    if args.work.exists() and not args.work.is_dir():
        raise UserError(f"{args.work}: --work must be a directory (checkpoints go there)")
    if args.pack and args.pack.resolve() == args.work.resolve():
        raise UserError(f"{args.pack}: --pack must differ from --work (the compact copies would replace the "
                        "checkpoints)")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    args.work.mkdir(parents=True, exist_ok=True)
    for name in stages:
        text = None if name == "keyframes" else load_text_encoder(args.work, device, args.init)
        Stage(name, args.work, device, args.lr, text, args.freeze_text, args.prediction, args.init,
              args.reversal_margin, args.neighbour_share, held_out).run(
            args.steps, args.minutes, args.batch_size, args.seed, args.save_every)
    if args.pack:
        pack(args.work, args.pack)
        print(f"compact checkpoints written to {args.pack}")
    if args.export:
        export(args.work, args.export)
        print(f"shapes cascade written to {args.export}")


if __name__ == "__main__":
    main()
