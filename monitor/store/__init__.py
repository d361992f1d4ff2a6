"""The station's SQLite store and the writer thread that owns its connection."""
