"""``python -m vjepa2`` (what ``torchrun -m vjepa2 ...`` runs) is the ``vjepa2`` command."""

import sys

from vjepa2.cli import main

sys.exit(main())
