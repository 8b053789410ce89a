"""``python -m chanlab``: the ``chanlab`` command (torchrun starts data-parallel ranks this way)."""

import sys

from chanlab.cli import main

sys.exit(main())
