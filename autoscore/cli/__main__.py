"""``python -m autoscore.cli`` is the ``autoscore`` command."""

from . import main

main()
