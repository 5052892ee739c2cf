"""Image-tagging logic for the dashboard. Nothing in this package imports Streamlit."""
