"""``python -m tzsb`` is the ``tzsb`` command."""

from tzsb.cli import main

main()
