"""PyInstaller's entry script for the desktop app (the installers' main executable)."""

from gambiarra_desktop.gui.app import main

raise SystemExit(main())
