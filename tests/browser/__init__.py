"""Helpers for the widget, notebook and real-browser tests (tiny models, test images, servers)."""
