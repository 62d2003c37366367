"""Model classes: the Show-1-compatible 3D UNet."""

from vmc.models.unet import Show1UNet3D

__all__ = ["Show1UNet3D"]
