"""``python -m vsql`` runs the vsql shell."""

import sys

from vsql.shell import main

sys.exit(main())
