"""The BLE shell: find, connect, subscribe and keep every sensor streaming (bleak)."""
