"""``python -m tzsb`` is the ``tzsb`` command."""

from tzsb.cli.main import main

main()
