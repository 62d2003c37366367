"""`streamlit run dashboard/app.py [-- --runs DIR]`: the dashboard, served with one extra route.

Streamlit runs `main.py` as the app; this wrapper adds `/run-files/<token>`, which streams the videos the app
shows straight from disk (with HTTP range requests), so galleries never pass through server memory.
"""

import streamlit as st
from starlette.routing import Route

from dashboard.media import ROUTE, serve_file

app = st.App("main.py", routes=[Route(ROUTE + "/{token}", serve_file)])
