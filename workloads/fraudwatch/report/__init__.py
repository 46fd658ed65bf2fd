"""The analyst report: one self-contained HTML file with charts."""
