"""The hub ``bench/proxy_bench.py`` measures: ``gambiarra serve`` itself, with two changes
made from outside, and no code of its own on the request path.

- It starts with a soft open-file limit of 1024, the default many systems give a process
  (this machine's may be higher), so the 1,000-stream row shows whether the hub raises its
  own limit as it should, rather than living off a generous shell.
- Its per-room queue bound is raised (``--queue-max``). A participant serves at most 64
  requests at once (the protocol's ``maxConcurrent`` cap), so 1,000 streams over 4
  participants means 256 relayed at once and the rest waiting their turn; with the default
  bound of 64 waiting they would get 429 instead, which is the queue working, not a fault
  the bench is looking for.

Run: ``python bench/proxy_hub.py --queue-max 1024 -- serve --port P ...``.
"""

from __future__ import annotations

import argparse
import functools
import resource
import sys

DEFAULT_SOFT_NOFILE = 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queue-max", type=int, default=64)
    parser.add_argument("--nofile", type=int, default=DEFAULT_SOFT_NOFILE,
                        help="soft open-file limit to start with (the hub raises its own)")
    parser.add_argument("serve_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    soft = args.nofile if hard == resource.RLIM_INFINITY else min(args.nofile, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    from gambiarra_desktop import cli
    from gambiarra_desktop.commands import serve
    from gambiarra_desktop.hub import HubConfig

    # serve() builds its HubConfig from this module global at call time.
    serve.HubConfig = functools.partial(  # type: ignore[attr-defined,assignment]
        HubConfig, queue_max_per_room=args.queue_max)
    argv = [a for a in args.serve_args if a != "--"]
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
