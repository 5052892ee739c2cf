"""The Streamlit layer shared by the pages: cached resources, session state, charts."""
