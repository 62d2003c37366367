"""VMC: video motion customization on a Show-1-compatible cascade (model, pipelines, adaptation)."""

import logging


class _NoEmptyFloat32Warning(logging.Filter):
    """diffusers warns at every `model.to(dtype)` that the model's modules "should be kept in float32: []", also
    when the list is empty (it tests `_keep_in_fp32_modules or []` against None), so each stage of each process
    printed it; that empty warning alone is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "should be kept in float32: []" not in record.getMessage()


logging.getLogger("diffusers.models.modeling_utils").addFilter(_NoEmptyFloat32Warning())
