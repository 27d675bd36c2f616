"""The ``tzsb`` command."""
