"""The Streamlit dashboard (`streamlit run dashboard/app.py`); reads run directories only."""
