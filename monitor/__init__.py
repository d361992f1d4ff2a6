"""Spotter's station daemon: the pure safety core and the shell around it."""
