"""The hub's own HTTP front end for its busiest route, room chat completions.

aiohttp's per-request machinery (request objects, routing, middleware, response objects and
signals) cost the hub more CPU per proxied chat than everything the hub itself does. So the
socket is read by :class:`~gambiarra_desktop.hub.front.connection.FrontConnection` first:
a connection that starts with ``POST /rooms/CODE/v1/chat/completions`` is parsed here with
``httptools`` and its chats are served by the same steps aiohttp's route runs
(``hub/api/room_chat.py``); every other connection is handed to aiohttp untouched, and a
request this front end does not serve itself (a chunked body, ``Expect``, another route
later on the same connection) is handed to aiohttp from then on.
"""
