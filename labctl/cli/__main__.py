"""``python -m labctl.cli``: the ``labctl`` command."""

import sys

from labctl.cli import main

sys.exit(main())
