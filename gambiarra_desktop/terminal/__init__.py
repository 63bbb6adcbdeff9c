"""Terminal sessions of seeds 002/003 (local, SSH, Telnet), reachable only from the hub's
own machine with the admin's token; see ``guard.py`` for who may call and ``manager.py``
for a session's life."""
