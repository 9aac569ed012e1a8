"""``python -m kmq``: the same as the ``kmq`` command."""

import sys

from ._cli import main

sys.exit(main())
