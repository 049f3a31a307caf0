"""Template tags of the console (console_tags)."""
