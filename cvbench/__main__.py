"""``python -m cvbench`` is the ``cvbench`` command."""

from .cli import main

main()
