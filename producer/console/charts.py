"""Server-rendered SVG charts (placeholder replaced below)."""
