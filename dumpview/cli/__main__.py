"""``python -m dumpview.cli``: the same as the ``dumpview`` command."""

from dumpview.cli import main

main()
