"""``python -m monitor.cli``: the same as the ``spotter`` command."""

from monitor.cli.main import main

main()
