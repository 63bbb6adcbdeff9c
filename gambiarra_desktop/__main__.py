"""``python -m gambiarra_desktop`` opens the desktop app (the ``gambiarra`` command is the
headless CLI)."""

import sys

from gambiarra_desktop.gui.app import main

sys.exit(main())
