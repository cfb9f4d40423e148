"""Raw TCP and UDP frame ingest (ports 9000 and 9001)."""
