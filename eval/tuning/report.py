"""What a tuning reports, from the whole study (every process's trials): OUT/settings.json (per method the best
trial that meets every constraint, else the best of all, marked), trials.csv, report.md and objective.svg."""

from __future__ import annotations

import json

from eval.results import atomic_write_text
from eval.spreadsheet import frame_to_csv


def rows(tuning, storage) -> list[dict]:
    """One row per complete trial of every method."""
    from optuna.trial import TrialState

    found = []
    for label in tuning.methods:
        for t in tuning.study(label, storage).get_trials(deepcopy=False):
            if t.state != TrialState.COMPLETE:
                continue
            a = t.user_attrs
            found.append({"method": label, "trial": t.number, tuning.objective: t.value, "ci95_low": a["ci"][0],
                          "ci95_high": a["ci"][1], **a.get("constraint_values", {}),
                          "feasible": max(a.get("violations") or [0.0]) <= 0, "official": bool(a.get("official")),
                          "settings": json.dumps(t.params, sort_keys=True), "folder": a["folder"]})
    return found


def best(tuning, table: list[dict]) -> dict[str, dict]:
    """Per method, the best trial that meets every constraint (else the best of all, marked infeasible)."""
    chosen = {}
    for label in tuning.methods:
        mine = [r for r in table if r["method"] == label]
        pool = [r for r in mine if r["feasible"]] or mine
        if pool:
            pick = max if tuning.maximize else min
            chosen[label] = pick(pool, key=lambda r: r[tuning.objective])
    return chosen


def write_report(tuning, storage):
    import pandas as pd

    table = rows(tuning, storage)
    chosen = best(tuning, table)
    out, objective = tuning.out, tuning.objective
    atomic_write_text(out / "trials.csv", frame_to_csv(pd.DataFrame(table), index=False))
    atomic_write_text(out / "settings.json", json.dumps({
        "tuned_by": {**tuning.definition(), "trials": tuning.args.trials, "command": tuning.command},
        "methods": {label: {**tuning.runner.fixed(label), **json.loads(r["settings"])} for label, r in chosen.items()},
        "values": {label: {objective: r[objective], "ci95": [r["ci95_low"], r["ci95_high"]],
                           "feasible": r["feasible"], "trial": r["trial"]} for label, r in chosen.items()}},
        indent=1))
    atomic_write_text(out / "report.md", markdown(tuning, table, chosen))
    if table:
        plot(tuning, table)


def markdown(tuning, table, chosen) -> str:
    args, objective = tuning.args, tuning.objective
    direction = "higher" if tuning.maximize else "lower"
    lines = [f"# Tuning on {args.benchmark}", "",
             f"Objective: `{objective}` ({direction} is better), mean over target prompts with its 95% "
             f"interval. Constraints: {', '.join(f'`{c}`' for c in tuning.constraints) or 'none'}. "
             f"{args.trials} trials per method; seeds {args.seeds}.", "",
             "The best of several trials chosen on the same videos is biased upwards: judge the chosen settings "
             "on another split (`python -m eval.run --settings settings.json`).", "",
             "| method | trials | official settings | best | settings | trial folder |",
             "|---|---|---|---|---|---|"]
    for label in tuning.methods:
        mine = [r for r in table if r["method"] == label]
        official = next((r for r in mine if r["official"]), None)
        b = chosen.get(label)
        cell = "—" if b is None else (f"{b[objective]:.3f} [{b['ci95_low']:.3f}, {b['ci95_high']:.3f}]"
                                      + ("" if b["feasible"] else " (no trial met the constraints)"))
        settings, folder = ("—", "—") if b is None else (f"`{b['settings']}`", b["folder"])
        lines.append(f"| {label} | {len(mine)}/{args.trials} | "
                     f"{'—' if official is None else f'{official[objective]:.3f}'} | {cell} | {settings} | "
                     f"{folder} |")
    lines += ["", "Search spaces (the official value first):", ""]
    for label in tuning.methods:
        space = ", ".join(f"{k} {p.centre} in {p.describe()}" for k, p in tuning.space(label).items())
        fixed = ", ".join(f"{k}={v}" for k, v in tuning.runner.fixed(label).items())
        lines.append(f"- {label}: {space}{f'; fixed {fixed}' if fixed else ''}")
    return "\n".join(lines + ["", "![objective against trial](objective.svg)", ""])


def plot(tuning, table):
    import altair as alt
    import pandas as pd

    objective = tuning.objective
    df = pd.DataFrame(table).sort_values(["method", "trial"])
    df["order"] = df.groupby("method").cumcount() + 1
    feasible = df[objective].where(df["feasible"]).groupby(df["method"])  # the best is chosen among these
    df["best so far"] = feasible.cummax() if tuning.maximize else feasible.cummin()
    df["best so far"] = df.groupby("method")["best so far"].ffill()
    x = alt.X("order:Q", title="trial of the method", scale=alt.Scale(domain=[1, int(df["order"].max())]),
              axis=alt.Axis(tickMinStep=1, format="d"))
    points = alt.Chart(df).mark_point(filled=True, size=60).encode(
        x=x, y=alt.Y(f"{objective}:Q", title=objective, scale=alt.Scale(zero=False)), color="method:N",
        shape=alt.Shape("feasible:N", title="meets constraints"), tooltip=["method", "trial", "settings"])
    line = alt.Chart(df).mark_line(strokeDash=[4, 3]).encode(x=x, y="best so far:Q", color="method:N")
    (points + line).properties(width=520, height=300, title=f"{objective} per trial").save(
        str(tuning.out / "objective.svg"))
