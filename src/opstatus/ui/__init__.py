"""The dashboard's files (``static/``), served by ``opstatus.http.ui``; no Python of its own."""
