"""One video up close: its frames, per-frame text alignment, frame-by-frame similarity, motion vs the reference
(flow and oracle paths, and the point tracks behind motion_fidelity)."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from dashboard.data import load_records, reference_path, video_path
from dashboard.media import video_html
from dashboard.views.gallery import gallery_rows

STRIP_FRAMES = 8


@st.cache_data(show_spinner=False, max_entries=8)
def frame_strip(path: str, mtime: float) -> list[np.ndarray]:
    from eval.video import read_video

    video = read_video(path, min_frames=1)
    idx = np.linspace(0, video.num_frames - 1, min(STRIP_FRAMES, video.num_frames)).round().astype(int)
    return [video.frames[i] for i in idx]


def heatmap(matrix) -> alt.Chart:
    m = np.asarray(matrix, dtype=float)
    df = pd.DataFrame([{"i": i, "j": j, "cos": m[i, j]} for i in range(m.shape[0]) for j in range(m.shape[1])])
    return alt.Chart(df).mark_rect().encode(x="j:O", y="i:O", color=alt.Color("cos:Q", scale=alt.Scale(scheme="viridis")),
                                            tooltip=["i", "j", "cos"]).properties(height=300)


def trajectory_frame(steps, label: str) -> pd.DataFrame:
    """Cumulative path from per-step displacements (x right, y down as in the image)."""
    s = np.asarray(steps, dtype=float).reshape(-1, 2)
    path = np.vstack([[0.0, 0.0], np.cumsum(s, axis=0)])
    return pd.DataFrame({"x": path[:, 0], "y": -path[:, 1], "t": np.arange(len(path)), "video": label})


def tracks_frame(tracks, label: str) -> pd.DataFrame:
    """Point tracks (N, T, 2) in pixels of the scored size → one row per point and frame (y up)."""
    t = np.asarray(tracks, dtype=float).reshape(len(tracks), -1, 2) if len(tracks) else np.zeros((0, 0, 2))
    n, steps = t.shape[:2]
    return pd.DataFrame({"x": t[..., 0].ravel(), "y": -t[..., 1].ravel(), "t": np.tile(np.arange(steps), n),
                         "track": np.repeat(np.arange(n), steps), "video": label})


def tracks_chart(details: dict) -> alt.Chart | None:
    """Both videos' tracks side by side, each a faint line from its first-frame point to a dot at its end."""
    if "tracks" not in details or "tracks_reference" not in details:
        return None
    h, w = details.get("tracks_size", [96, 96])
    df = pd.concat([tracks_frame(details["tracks"], "output"),
                    tracks_frame(details["tracks_reference"], "reference")], ignore_index=True)
    x = alt.X("x:Q", scale=alt.Scale(domain=[0, w]), title=None)
    y = alt.Y("y:Q", scale=alt.Scale(domain=[-h, 0]), title=None, axis=None)
    base = alt.Chart(df).encode(x=x, y=y, color=alt.Color("t:Q", scale=alt.Scale(scheme="viridis"), title="frame"))
    lines = base.mark_line(opacity=0.6).encode(detail="track:N", order="t:Q")
    ends = base.transform_filter(alt.datum.t == details.get("tracks_frames", 2) - 1).mark_point(size=12)
    return (lines + ends).properties(width=260, height=max(120, int(260 * h / w))).facet(column="video:N")


def render(runs, studies):
    rows = gallery_rows(runs)
    if rows.empty:
        st.info("No videos in the selected runs yet.")
        return
    options = {f"{r['label']} · {r['case']} · {r['prompt']} · seed {r['seed']}": i for i, r in rows.iterrows()}
    choice = st.selectbox("Video", list(options))
    r = rows.loc[options[choice]]
    run = next(x for x in runs if x.name == r["run"])
    record = load_records(run.path)[r["key"]]
    path = video_path(run.path, record)
    ref = reference_path(run.path, record)
    c1, c2, c3 = st.columns([1, 1, 2])
    with c1:
        st.html(video_html(path, "output"))
    with c2:
        if ref is not None and ref.is_file():
            st.html(video_html(ref, "reference"))
    with c3:
        metrics = {k[len("metric."):]: v for k, v in r.items() if k.startswith("metric.") and pd.notna(v)}
        undefined = {k[len("undefined."):]: v for k, v in r.items() if k.startswith("undefined.") and pd.notna(v)}
        st.dataframe(pd.DataFrame({"value": metrics}), width="stretch")
        for k, why in undefined.items():
            st.caption(f"{k}: undefined ({why})")
    if path.is_file():
        st.image(frame_strip(str(path), path.stat().st_mtime), width=110)
    else:
        st.warning(f"{path}: missing")
    details = record.details
    left, right = st.columns(2)
    with left:
        st.subheader("Text alignment per frame")
        if details.get("text_cos_per_frame"):
            cos = details["text_cos_per_frame"]
            st.line_chart(pd.DataFrame({"frame": details.get("frame_indices", list(range(len(cos))))[:len(cos)],
                                        "cosine": cos}).set_index("frame"))
        else:
            st.caption("not recorded for this video")
    with right:
        st.subheader("Frame-by-frame similarity")
        if details.get("frame_similarity"):
            st.altair_chart(heatmap(details["frame_similarity"]), width="stretch")
        else:
            st.caption("not recorded for this video")
    st.subheader("Motion compared with the reference")
    paths = []
    if details.get("trajectory") and details.get("trajectory_reference"):
        paths += [trajectory_frame(details["trajectory"], "output (flow)"),
                  trajectory_frame(details["trajectory_reference"], "reference (flow)")]
    if details.get("oracle_track") and details.get("oracle_reference_track"):
        for key, label in (("oracle_track", "output (oracle)"), ("oracle_reference_track", "reference (oracle)")):
            track = np.array([p if p is not None else [np.nan] * 3 for p in details[key]], dtype=float)
            paths.append(pd.DataFrame({"x": track[:, 0], "y": -track[:, 1], "t": np.arange(len(track)),
                                       "video": label}))
    if paths:
        df = pd.concat(paths, ignore_index=True).dropna()
        chart = alt.Chart(df).mark_line(point=True).encode(x="x:Q", y=alt.Y("y:Q", title="y (up)"), color="video:N",
                                                           order="t:Q", tooltip=["video", "t", "x", "y"])
        st.altair_chart(chart.properties(height=360), width="stretch")
        st.caption("Flow paths: cumulative mean displacement (pixels of the scored size); oracle paths: the "
                   "object's centre (fraction of the frame).")
    else:
        st.caption("no trajectories recorded for this video")
    st.subheader("Point tracks (motion fidelity)")
    chart = tracks_chart(details)
    if chart is None:
        st.caption("no point tracks recorded for this video (scored without the tracks metric, or no reference)")
    else:
        counts = details.get("tracks_counts", {})
        st.altair_chart(chart)
        st.caption(f"Up to 64 tracks of each video, pixels of the scored size, coloured by frame; scored: "
                   f"{counts.get('n_tracks', '?')} moving tracks of the output ({counts.get('n_static', '?')} "
                   f"static left out) against {counts.get('n_reference', '?')} of the reference "
                   f"({counts.get('n_static_reference', '?')} static).")
