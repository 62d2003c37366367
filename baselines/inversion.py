"""`inversion`: zero-shot motion transfer by DDIM inversion alone (no training).

The reference clip is DDIM-inverted with the unadapted keyframe UNet (empty prompt, the same inversion steps
and schedule as `vmc` on that backbone) and the cascade samples the target prompt from that noise. It
isolates what the inverted starting noise contributes to motion, so the gain of VMC's training over it is
the gain of the training.
"""

from __future__ import annotations

from vmc.families.tuning import TuningMethod


class InversionMethod(TuningMethod):
    name = "inversion"
    settings_key = "vmc"
    trains = False
