"""CSV files as a spreadsheet opens them: text that would run as a formula is neutralised.

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is taken for a formula by Excel,
LibreOffice and Google Sheets (a rater id `=HYPERLINK(...)` becomes a link; worse, a command). Every CSV the
project writes goes through here: such text cells get a leading `'`, which spreadsheets show as text. Numbers
(`-0.5`, as a number or as text) are left alone.
"""

from __future__ import annotations

import re

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|nan)$", re.IGNORECASE)


def neutralise(value):
    """`value`, with a leading `'` where it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not NUMBER.match(value):
        return "'" + value
    return value


def safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of `df` whose text cells (and column names and row labels) are neutralised; numbers untouched."""
    out = df.rename(columns=lambda c: neutralise(c) if isinstance(c, str) else c)
    if pd.api.types.is_object_dtype(out.index) or pd.api.types.is_string_dtype(out.index):
        out.index = out.index.map(neutralise)
    for column in out.select_dtypes(include=["object", "string"]).columns:
        out[column] = out[column].map(neutralise)
    return out


def frame_to_csv(df: pd.DataFrame, **kwargs) -> str:
    """`df.to_csv(**kwargs)` with formula-looking text neutralised."""
    return safe_frame(df).to_csv(**kwargs)


def safe_row(row) -> list:
    """A csv.writer row with formula-looking text neutralised."""
    return [neutralise(cell) for cell in row]
