"""Baseline methods behind the same contract as `vmc` (adapt / generate), for honest comparisons."""
