"""Numbered SQLite migrations, applied in order when the store opens."""
