"""``python -m foveal`` runs the command line."""

import sys

from foveal.cli.main import main

sys.exit(main())
