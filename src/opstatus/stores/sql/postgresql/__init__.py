"""PostgreSQL schema and migrations."""
