"""``python -m mooseng`` is the ``mooseng`` command."""

import sys

from mooseng.cli import main

sys.exit(main())
