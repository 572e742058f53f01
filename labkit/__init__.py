"""labkit: the companion library of the smart-building streaming lab.

Each module does one job (see DESIGN.md); notebooks import the ones they need::

    from labkit import settings, stack, topics, spark
"""

__version__ = "0.1.0"
