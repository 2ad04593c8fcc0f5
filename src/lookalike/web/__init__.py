"""The search page served at ``/``: ``templates/index.html`` plus ``static/`` (vanilla JS and CSS, no build step)."""

from pathlib import Path

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
