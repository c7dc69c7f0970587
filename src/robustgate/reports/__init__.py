"""Renderings of results (the terminal table now; JSON, HTML and Markdown reports later)."""
