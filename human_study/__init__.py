"""Human-study design, export to survey platforms, answer ingestion and statistics."""
