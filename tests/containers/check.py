"""Checks for the container suite (tests/containers/run.sh) that read JSON.

    check.py field FILE PATH          print one value of a JSON file: a.b.0.c
    check.py streams FILE...          watch --json streams agree on the order of events
    check.py counted LOG              whole seconds of use in a `child-agent log` dump
    check.py events HISTORY KIND TEXT count history --json events (one per line) of KIND whose
                                      summary holds TEXT

Each prints what it found; `streams` exits 1 when the streams disagree.
"""

import json
import sys


def field(path, dotted):
    value = json.load(open(path))
    for part in dotted.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    print(value)


def event_seqs(path):
    """The seqs of the events a watch stream printed, in the order printed."""
    seqs = []
    for line in open(path, errors="replace"):
        line = line.strip()
        if not line.startswith("{"):
            continue
        item = json.loads(line)
        if item.get("type") == "event":
            seqs.append(item["seq"])
    return seqs


def streams(paths):
    """Every stream's events strictly increase by seq with no gap, and where two streams
    cover the same seqs they hold the same events: one order for every watcher."""
    seen = {path: event_seqs(path) for path in paths}
    ok = True
    for path, seqs in seen.items():
        if not seqs:
            print(f"{path}: no events")
            ok = False
        elif any(b != a + 1 for a, b in zip(seqs, seqs[1:])):
            gaps = [(a, b) for a, b in zip(seqs, seqs[1:]) if b != a + 1][:5]
            print(f"{path}: out of order or missing events at {gaps}")
            ok = False
    if ok:
        first = max(seqs[0] for seqs in seen.values())
        last = min(seqs[-1] for seqs in seen.values())
        common = {path: [s for s in seqs if first <= s <= last] for path, seqs in seen.items()}
        if len({tuple(c) for c in common.values()}) != 1 or last < first:
            print(f"streams differ over seq {first}..{last}")
            ok = False
        else:
            print(f"{len(paths)} streams agree on events {first}..{last} ({last - first + 1} events)")
    sys.exit(0 if ok else 1)


def counted(path):
    """The device's own use from its log, in whole seconds as household-core counts it:
    each interval from the second it starts in to the second it ends in, overlaps once."""
    from datetime import datetime

    def second(text):
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() // 1)

    intervals = []
    for line in open(path):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        kind = event.get("kind", {})
        if kind.get("kind") == "usage_reported":
            intervals.append((second(kind["start"]), second(kind["end"])))
    total, reach = 0, None
    for start, end in sorted(intervals):
        if reach is not None and start < reach:
            start = reach
        if end > start:
            total += end - start
            reach = end
    print(total)


def events(path, kind, text):
    lines = [json.loads(line) for line in open(path) if line.strip()]
    found = [e for e in lines if e.get("kind") == kind and text in e.get("summary", "")]
    print(len(found))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"field": field, "streams": lambda *p: streams(p), "counted": counted, "events": events}[
        command
    ](*args)
