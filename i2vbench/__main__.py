"""``python -m i2vbench`` is the ``i2vbench`` command."""

import sys

from .cli import main

sys.exit(main())
