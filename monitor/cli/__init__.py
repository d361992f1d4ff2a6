"""The ``spotter`` command line: one module per command group (the composition root)."""
