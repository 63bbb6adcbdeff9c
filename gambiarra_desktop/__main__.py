"""``python -m gambiarra_desktop`` runs the ``gambiarra`` command."""

import sys

from gambiarra_desktop.cli import main

sys.exit(main())
