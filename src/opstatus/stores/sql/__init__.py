"""Schema files per dialect: ``<dialect>/schema.sql`` and ``<dialect>/migrations/NNNN_*.sql``."""
