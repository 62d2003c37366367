"""`inversion`: zero-shot motion transfer by DDIM inversion alone (no training).

The reference clip is DDIM-inverted with the unadapted keyframe UNet (empty prompt, the same inversion steps
and schedule as `vmc` on that backbone) and the cascade samples the target prompt from that noise. It
isolates what the inverted starting noise contributes to motion, so the gain of VMC's training over it is
the gain of the training.
"""

from __future__ import annotations

from vmc.method import VMCMethod, _CascadeMethod


class InversionMethod(VMCMethod):
    name = "inversion"
    trains = False

    def info(self) -> dict:
        return {**_CascadeMethod.info(self), "trained_parameters": 0,
                "inversion_steps": self.inversion_steps, "inversion_schedule": self.inversion_schedule}
