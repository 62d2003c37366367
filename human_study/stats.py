"""Statistics of a human study: means and paired differences with two-way bootstrap CIs, Friedman and
Holm-corrected Wilcoxon tests, Krippendorff's alpha, and the paper-style table.

A claim such as "raters prefer A" is about other raters and other prompts alike, so the CIs resample both:
raters (one rater's ratings are not independent) and target prompts (the seeds of one prompt are replicates of
it, not new prompts). The tests compare per-rater mean scores (raters who rated every method), so they
generalise over raters for these prompts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from eval.table import tex_escape

N_BOOTSTRAP = 2000


def _crossed(df: pd.DataFrame, cells: list[tuple], n_boot: int, seed: int) -> tuple:
    """Rating sums and counts per rater × prompt × (method, question) cell, and every cell's mean in each
    replicate of a two-way bootstrap: raters and prompts (case, target prompt) drawn with replacement,
    independently, each rating weighted by how often its rater times how often its prompt was drawn.
    Returns (sums, counts, boot means of shape (n_boot, cells))."""
    raters = sorted(df["rater_id"].unique())
    units = sorted(set(zip(df["case"].astype(str), df["prompt"])))
    r_index = {r: i for i, r in enumerate(raters)}
    u_index = {u: i for i, u in enumerate(units)}
    c_index = {c: j for j, c in enumerate(cells)}
    sums = np.zeros((len(raters), len(units), len(cells)))
    counts = np.zeros_like(sums)
    for (r, case, prompt, m, q), g in df.groupby(["rater_id", df["case"].astype(str), "prompt", "method",
                                                  "question"]):
        if (m, q) in c_index:
            at = r_index[r], u_index[(case, prompt)], c_index[(m, q)]
            sums[at] = g["score"].sum()
            counts[at] = len(g)
    boot = np.full((n_boot, len(cells)), np.nan)
    if raters:
        rng = np.random.default_rng(seed)
        w_raters = rng.multinomial(len(raters), np.full(len(raters), 1 / len(raters)), size=n_boot)
        w_units = rng.multinomial(len(units), np.full(len(units), 1 / len(units)), size=n_boot)

        def weighted(x):  # Σ_r Σ_u w_r · w_u · x[r, u] for every replicate → (n_boot, cells)
            return np.einsum("bu,buc->bc", w_units, np.einsum("br,ruc->buc", w_raters, x))

        with np.errstate(invalid="ignore", divide="ignore"):
            boot = weighted(sums) / weighted(counts)
    return sums, counts, boot


def _percentiles(values: np.ndarray) -> tuple[float, float]:
    valid = values[np.isfinite(values)]
    return (float(np.percentile(valid, 2.5)), float(np.percentile(valid, 97.5))) if len(valid) else \
        (float("nan"), float("nan"))


def method_means(df: pd.DataFrame, methods: list[str], questions: list[str], n_boot: int = N_BOOTSTRAP,
                 seed: int = 0) -> pd.DataFrame:
    """Per method × question: mean, 95% percentile CI of the two-way bootstrap (`_crossed`), and the ratings,
    raters and prompts counted."""
    cells = [(m, q) for m in methods for q in questions]
    sums, counts, boot = _crossed(df, cells, n_boot, seed)
    rows = []
    for j, (m, q) in enumerate(cells):
        n = counts[..., j].sum()
        low, high = _percentiles(boot[:, j])
        rows.append({"method": m, "question": q, "mean": sums[..., j].sum() / n if n else float("nan"),
                     "ci95_low": low, "ci95_high": high, "n_ratings": int(n),
                     "n_raters": int((counts[..., j].sum(axis=1) > 0).sum()),
                     "n_prompts": int((counts[..., j].sum(axis=0) > 0).sum())})
    return pd.DataFrame(rows)


def method_differences(df: pd.DataFrame, methods: list[str], questions: list[str], against: str,
                       n_boot: int = N_BOOTSTRAP, seed: int = 0) -> pd.DataFrame:
    """Per question and method: the mean score of `against` minus the method's, with the 95% CI of the same
    two-way bootstrap, both means taken in each replicate (so the draws are paired: a rater's leniency and a
    prompt's difficulty cancel, and the interval generalises over raters and prompts alike)."""
    cells = [(m, q) for m in methods for q in questions]
    index = {c: j for j, c in enumerate(cells)}
    sums, counts, boot = _crossed(df, cells, n_boot, seed)
    rows = []
    for q in questions:
        a = index[(against, q)]
        for m in methods:
            if m == against:
                continue
            b = index[(m, q)]
            na, nb = counts[..., a].sum(), counts[..., b].sum()
            diff = sums[..., a].sum() / na - sums[..., b].sum() / nb if na and nb else float("nan")
            low, high = _percentiles(boot[:, a] - boot[:, b])
            rows.append({"question": q, "method": m, "against": against, "mean_diff": diff, "ci95_low": low,
                         "ci95_high": high, "excludes_zero": bool(low > 0 or high < 0)})
    return pd.DataFrame(rows, columns=["question", "method", "against", "mean_diff", "ci95_low", "ci95_high",
                                       "excludes_zero"])


def per_rater_means(df: pd.DataFrame, question: str, methods: list[str]) -> pd.DataFrame:
    """Rater × method mean scores for one question, only raters who rated every method."""
    table = df[df["question"] == question].pivot_table(index="rater_id", columns="method", values="score",
                                                       aggfunc="mean")
    return table.reindex(columns=methods).dropna()


def significance(df: pd.DataFrame, methods: list[str], questions: list[str], against: str) -> pd.DataFrame:
    """Per question: Friedman across all methods; Wilcoxon signed-rank of `against` vs each other method, with
    Holm's correction over the comparisons of that question."""
    from statsmodels.stats.multitest import multipletests

    rows = []
    for q in questions:
        table = per_rater_means(df, q, methods)
        n = len(table)
        if len(methods) >= 3 and n >= 2:
            stat, p = stats.friedmanchisquare(*(table[m].to_numpy() for m in methods))
            rows.append({"question": q, "test": "friedman", "method": "all", "against": "", "n_raters": n,
                         "statistic": stat, "p": p, "p_holm": p, "note": ""})
        else:
            rows.append({"question": q, "test": "friedman", "method": "all", "against": "", "n_raters": n,
                         "statistic": None, "p": None, "p_holm": None,
                         "note": "needs at least 3 methods and 2 raters who rated all of them"})
        pairs = []
        for m in methods:
            if m == against:
                continue
            diff = table[against] - table[m]
            if (diff != 0).sum() == 0:
                pairs.append({"question": q, "test": "wilcoxon", "method": m, "against": against, "n_raters": n,
                              "statistic": None, "p": 1.0, "note": "all per-rater differences are zero"})
                continue
            res = stats.wilcoxon(table[against], table[m])
            pairs.append({"question": q, "test": "wilcoxon", "method": m, "against": against, "n_raters": n,
                          "statistic": float(res.statistic), "p": float(res.pvalue), "note": ""})
        if pairs:
            holm = multipletests([p["p"] for p in pairs], method="holm")[1]
            for p, h in zip(pairs, holm):
                p["p_holm"] = float(h)
        rows += pairs
    return pd.DataFrame(rows, columns=["question", "test", "method", "against", "n_raters", "statistic", "p",
                                       "p_holm", "note"])


def krippendorff_alpha(ratings: pd.DataFrame, level: str = "ordinal", domain=(1, 2, 3, 4, 5)) -> float:
    """Krippendorff's alpha of a rater × unit table (NaN where a rater did not rate a unit)."""
    import krippendorff

    return float(krippendorff.alpha(reliability_data=ratings.to_numpy(dtype=float), level_of_measurement=level,
                                    value_domain=list(domain)))


def agreement(df: pd.DataFrame, questions: list[str], domain) -> pd.DataFrame:
    """Ordinal Krippendorff's alpha per question over the rated method videos (units)."""
    rows = []
    for q in questions:
        table = df[df["question"] == q].pivot_table(index="rater_id", columns="blind_id", values="score",
                                                    aggfunc="first")
        pairable = int((table.notna().sum(axis=0) >= 2).sum())
        row = {"question": q, "alpha_ordinal": None, "n_units": table.shape[1], "n_units_pairable": pairable,
               "n_raters": table.shape[0], "note": ""}
        values = table.stack().unique()
        if pairable == 0:
            row["note"] = "no video was rated by two or more raters"
        elif len(values) < 2:
            row["note"] = "all ratings are identical; alpha is undefined"
        else:
            row["alpha_ordinal"] = krippendorff_alpha(table, "ordinal", domain)
        rows.append(row)
    return pd.DataFrame(rows)


def paper_table(means: pd.DataFrame, methods: list[str], questions: list[str], labels: dict) -> tuple[str, str]:
    """(Markdown, LaTeX) tables: methods × questions, mean [95% CI], best mean per column in bold."""
    best = means.groupby("question")["mean"].max()

    def cell(m, q, bold):
        r = means[(means["method"] == m) & (means["question"] == q)].iloc[0]
        if not r["n_ratings"]:
            return "–"
        text = f"{r['mean']:.2f} [{r['ci95_low']:.2f}, {r['ci95_high']:.2f}]"
        return bold(text) if np.isclose(r["mean"], best[q]) else text

    header = ["Method"] + [labels[q] for q in questions]
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    tex = [r"\begin{tabular}{l" + "c" * len(questions) + "}", r"\toprule",
           " & ".join(tex_escape(h) for h in header) + r" \\", r"\midrule"]
    for m in methods:
        md.append("| " + " | ".join([m] + [cell(m, q, lambda t: f"**{t}**") for q in questions]) + " |")
        tex.append(" & ".join([tex_escape(m)] + [cell(m, q, lambda t: rf"\textbf{{{t}}}") for q in questions])
                   + r" \\")
    tex += [r"\bottomrule", r"\end{tabular}"]
    note = "Likert 1–5, mean [95% CI, bootstrap over raters and prompts]; best per column in bold."
    return "\n".join(md) + f"\n\n{note}\n", "\n".join(tex) + f"\n% {note}\n"
