"""The page's state machine (one `Session` per browser session), uploads and downloads; never imports streamlit
(`app.py` at the repository root holds the widgets)."""
