"""PyInstaller's entry script for the ``gambiarra`` CLI shipped beside the app."""

from gambiarra_desktop.cli import main

raise SystemExit(main())
