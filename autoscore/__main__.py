"""``python -m autoscore`` is the ``autoscore`` command."""

from .cli import main

main()
