"""SQLite schema and migrations."""
