"""Rendering at the edges: outcomes to the terminal (rich, JSON) and to Slack."""
