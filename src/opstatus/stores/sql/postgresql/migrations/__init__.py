"""Numbered PostgreSQL migrations, applied in order by ``opstatus migrate``."""
