"""The hub's own web page for guests: a browser on the LAN uses a room with nothing installed.

``routes.py`` serves the page and its files; ``static/`` holds them (plain HTML, CSS and
JavaScript, no build step, no CDN); ``links.py`` says which address guests use and
``qr.py`` draws it as a QR code for the app and the terminal.
"""
