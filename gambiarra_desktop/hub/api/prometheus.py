"""``GET /metrics`` in the Prometheus text exposition format (version 0.0.4).

The page needs no password (scrapers rarely send one), so a password room's participants
appear only in the totals, never by id, nickname or model: those are the room's business.
"""

from __future__ import annotations

from gambiarra_desktop.hub.proxy.scheduler import Scheduler
from gambiarra_desktop.hub.proxy.stats import StatsBook
from gambiarra_desktop.hub.rooms.lifecycle import RoomRegistry

PARTICIPANT_SERIES = (
    ("gambiarra_participant_requests_total", "counter", "Requests sent to the participant.",
     "requests"),
    ("gambiarra_participant_errors_total", "counter", "Requests that failed.", "errors"),
    ("gambiarra_participant_tokens_in_total", "counter", "Prompt tokens, where reported.",
     "tokens_in"),
    ("gambiarra_participant_tokens_out_total", "counter", "Generated tokens.", "tokens_out"),
    ("gambiarra_participant_in_flight", "gauge", "Requests running now.", "in_flight"),
    ("gambiarra_participant_max_concurrent", "gauge", "Concurrency limit (declared or learned).",
     "max_concurrent"),
    ("gambiarra_participant_tokens_per_second", "gauge", "Speed of the last answer.",
     "last_tokens_per_second"),
)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(registry: RoomRegistry, stats: StatsBook, scheduler: Scheduler) -> str:
    lines = ["# HELP gambiarra_rooms Rooms on this hub.", "# TYPE gambiarra_rooms gauge",
             f"gambiarra_rooms {len(registry)}"]
    rooms = [registry.get(entry["code"]) for entry in registry.list_rooms()]
    participants = [(room, p) for room in rooms if room is not None
                    for p in room.participants.values()]
    lines += ["# HELP gambiarra_participants Participants by status.",
              "# TYPE gambiarra_participants gauge"]
    for status in ("online", "offline"):
        count = sum(1 for _, p in participants if p["status"] == status)
        lines.append(f'gambiarra_participants{{status="{status}"}} {count}')
    participants = [(room, p) for room, p in participants if not room.has_password]
    for name, kind, help_text, field in PARTICIPANT_SERIES:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for room, p in participants:
            value = getattr(stats.get(room.code, p["id"]), field)
            labels = (f'room="{_label(room.code)}",participant="{_label(p["id"])}",'
                      f'nickname="{_label(p["nickname"])}",model="{_label(p["model"])}"')
            lines.append(f"{name}{{{labels}}} {value}")
    name = "gambiarra_participant_ttft_seconds"
    lines += [f"# HELP {name} Moving average of the time to first token.",
              f"# TYPE {name} gauge"]
    for room, p in participants:
        ttft = stats.get(room.code, p["id"]).ttft_ms
        if ttft is not None:
            lines.append(f'{name}{{room="{_label(room.code)}",participant="{_label(p["id"])}"}}'
                         f" {ttft / 1000:.6f}")
    lines += ["# HELP gambiarra_queue_waiting Requests waiting for a free participant.",
              "# TYPE gambiarra_queue_waiting gauge"]
    lines += [f'gambiarra_queue_waiting{{room="{_label(room.code)}"}} '
              f"{scheduler.waiting(room.code)}" for room in rooms if room is not None]
    lines += ["# HELP gambiarra_queue_rejected_total Requests answered 429.",
              "# TYPE gambiarra_queue_rejected_total counter"]
    lines += [f'gambiarra_queue_rejected_total{{room="{_label(room.code)}"}} '
              f"{scheduler.rejected[room.code]}" for room in rooms if room is not None]
    return "\n".join(lines) + "\n"
