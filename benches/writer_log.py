#!/usr/bin/env python3
"""Summarizes the submission writer's debug log of a load run:
    RUST_LOG=dlgrade::store=debug SERVER_LOG=/tmp/server.log benches/http_load.sh 15
    benches/writer_log.py /tmp/server.log
Prints, for the writer's batches and for each kind of checkpoint, how many
there were and their duration percentiles, and how many batches took over
20 ms (a stall every queued submission waits for)."""
import json
import sys


def summary(name, micros):
    if not micros:
        print(f"{name}: none")
        return
    micros.sort()
    pick = lambda q: micros[min(len(micros) - 1, int(len(micros) * q))] / 1000
    print(f"{name}: {len(micros)}, p50 {pick(0.5):.2f} ms, p99 {pick(0.99):.2f} ms, "
          f"max {micros[-1] / 1000:.2f} ms, over 20 ms: {sum(m > 20_000 for m in micros)}")


events = {"submission batch written": [], "background checkpoint": [], "writer's checkpoint": []}
rows = 0
with open(sys.argv[1]) as log:
    for line in log:
        try:
            record = json.loads(line)
            fields = record.get("fields", record)
        except json.JSONDecodeError:
            continue
        message = fields.get("message")
        if message in events:
            events[message].append(int(fields["micros"]))
            rows += int(fields.get("rows", 0))
batches = events["submission batch written"]
summary("writer batches", batches)
if batches:
    print(f"rows per batch: {rows / len(batches):.1f}")
summary("background checkpoints", events["background checkpoint"])
summary("writer's own checkpoints", events["writer's checkpoint"])
