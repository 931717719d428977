"""What ``chaos discover chaosmoose`` imports: the discovery of the chaosmoose extension.

Chaos Toolkit resolves the name given to ``chaos discover`` as a distribution and imports
the top-level module that distribution installs; this module is that one (the distribution
``chaosmoose`` in ``packaging/chaosmoose``) and hands over to ``chaosmoose.discover``.
"""

from chaosmoose import discover

__all__ = ["discover"]
