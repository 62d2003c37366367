"""VMC: video motion customization on a Show-1-compatible cascade (model, pipelines, adaptation)."""
