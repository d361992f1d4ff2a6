"""Where alarm events and station state go: terminal, JSON lines (and later store, sound...)."""
