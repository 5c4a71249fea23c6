"""Crash safety of stored submissions: SIGKILL the server in the middle of a
load of idempotent submissions, restart it on the same SQLite file, and check
that nothing acknowledged was lost or altered and that retries neither lose
nor duplicate anything.

usage: python3 crash_safety.py PATH/TO/dlgrade WORK_DIR [TOTAL] [KILL_AFTER]
(run by tests/contract/crash_safety.sh). Standard library only. Prints one line
per check and finally 'N passed, M failed'; exits 1 on any failure.
"""

import atexit
import json
import os
import queue
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

BIN, WORK = sys.argv[1], sys.argv[2]
TOTAL = int(sys.argv[3]) if len(sys.argv) > 3 else 1500
KILL_AFTER = int(sys.argv[4]) if len(sys.argv) > 4 else 300
WORKERS = 8
DB = os.path.join(WORK, "dlgrade.db")

# answer -> points of the rubric below (8x8x5 full, spatial size only 1, else 0)
ANSWERS = [("8x8x5", 2.0), ("8 x 8", 1.0), ("3x3x3", 0.0)]

RUBRIC = {
    "title": "Conv output size",
    "prompt": "5 filters, kernel 7, stride 3, padding 1 on a 26x26x26 input: output size?",
    "parts": [{
        "id": "b",
        "max_points": 2,
        "answer": {"type": "shape", "expected": [8, 8, 5]},
        "alternatives": [{"id": "spatial_only", "dims": [0, 1], "points": 1}],
    }],
}

passed = 0
failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")
    return ok


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, name):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout = open(os.path.join(WORK, f"{name}.stdout"), "w+")
        self.stderr = open(os.path.join(WORK, f"{name}.stderr"), "w+")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--addr", f"127.0.0.1:{self.port}", "--database-url", f"sqlite://{DB}"],
            stdout=self.stdout, stderr=self.stderr,
        )
        atexit.register(self.kill_if_running)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=1) as r:
                    if r.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        raise RuntimeError(f"server not ready on {self.url}")

    def bootstrap_key(self):
        self.stdout.flush()
        self.stdout.seek(0)
        m = re.search(r"dlg_[0-9a-f]+", self.stdout.read())
        return m.group(0) if m else None

    def kill_if_running(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def request(url, method="GET", key=None, body=None, headers=None, timeout=30):
    """(status, parsed JSON body); raises OSError when the connection fails."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def submission(i):
    answer, _ = ANSWERS[i % len(ANSWERS)]
    return {"rubric_id": RUBRIC_ID, "learner_id": f"learner-{i:05d}", "answers": {"b": answer}}


def submit(url, i):
    return request(url + "/v1/submissions", "POST", GRADER, submission(i), {"Idempotency-Key": f"crash-{i:05d}"})


def without_replayed(view):
    return {k: v for k, v in view.items() if k != "replayed"}


# --- setup ---------------------------------------------------------------
first = Server("first")
ADMIN = first.bootstrap_key()
check("first start prints the bootstrap admin key", ADMIN is not None)
status, rubric = request(first.url + "/v1/rubrics", "POST", ADMIN, RUBRIC)
check("rubric created", status == 201, rubric)
RUBRIC_ID = rubric["id"]
status, grader = request(first.url + "/v1/keys", "POST", ADMIN, {"role": "grader", "label": "crash"})
check("grader key created", status == 201, grader)
GRADER = grader["key"]

# --- load, killed in the middle -----------------------------------------
work = queue.Queue()
for i in range(TOTAL):
    work.put(i)
acked = {}  # i -> (status, body) of a 2xx answer
lock = threading.Lock()
killed = threading.Event()
errors_after_kill = []


def worker():
    while True:
        try:
            i = work.get_nowait()
        except queue.Empty:
            return
        try:
            status, body = submit(first.url, i)
        except OSError as e:
            with lock:
                errors_after_kill.append((i, repr(e)))
            continue
        if 200 <= status < 300:
            with lock:
                acked[i] = (status, body)
                n = len(acked)
            if n >= KILL_AFTER and not killed.is_set():
                killed.set()
                os.kill(first.proc.pid, signal.SIGKILL)


started = time.monotonic()
threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
first.proc.wait(timeout=30)
elapsed = time.monotonic() - started
lost = [i for i in range(TOTAL) if i not in acked]
print(f"load: {TOTAL} keys, {len(acked)} acknowledged, {len(lost)} not, in {elapsed:.1f} s; "
      f"server exit {first.proc.returncode}")
check("the server was killed mid-load (SIGKILL)", killed.is_set() and first.proc.returncode == -signal.SIGKILL,
      f"returncode {first.proc.returncode}")
check(f"at least {KILL_AFTER} submissions acknowledged before the kill", len(acked) >= KILL_AFTER, len(acked))
check("some requests failed because of the kill", len(errors_after_kill) > 0 and len(lost) > 0,
      f"errors {len(errors_after_kill)}, lost {len(lost)}")
check("every acknowledged submission was a fresh 201 with its own score",
      all(s == 201 and b["replayed"] is False and b["score"] == ANSWERS[i % 3][1] for i, (s, b) in acked.items()))

with sqlite3.connect(DB) as db:
    integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
check("SQLite integrity_check after the kill is ok", integrity == "ok", integrity)

# --- restart on the same file -------------------------------------------
second = Server("second")
check("restart on the same database prints no new bootstrap key", second.bootstrap_key() is None)

intact = 0
mismatches = []
for i, (_, body) in acked.items():
    status, got = request(f"{second.url}/v1/submissions/{body['id']}", key=GRADER)
    if status == 200 and without_replayed(got) == without_replayed(body):
        intact += 1
    else:
        mismatches.append((i, status))
check(f"all {len(acked)} acknowledged submissions present and intact after restart", intact == len(acked),
      mismatches[:5])

replayed_ok = 0
bad_replays = []
for i, (_, body) in acked.items():
    status, got = submit(second.url, i)
    if status == 200 and got["replayed"] is True and got["id"] == body["id"]:
        replayed_ok += 1
    else:
        bad_replays.append((i, status, got.get("id") if isinstance(got, dict) else got))
check(f"retrying the {len(acked)} acknowledged keys replays them (200, same id)", replayed_ok == len(acked),
      bad_replays[:5])

created_now = 0
committed_unacked = 0
lost_ids = {}
bad_lost = []
for i in lost:
    status, got = submit(second.url, i)
    if status == 201:
        created_now += 1
    elif status == 200 and got["replayed"] is True:
        committed_unacked += 1  # stored before the kill, answer lost on the wire
    else:
        bad_lost.append((i, status, got))
        continue
    if got["score"] != ANSWERS[i % 3][1]:
        bad_lost.append((i, "score", got["score"]))
    lost_ids[i] = got["id"]
print(f"retry of {len(lost)} unacknowledged keys: {created_now} created now, "
      f"{committed_unacked} had been stored before the kill")
check(f"retrying the {len(lost)} unacknowledged keys stores each exactly once", not bad_lost, bad_lost[:5])
again = [submit(second.url, i) for i in lost]
check("a second retry of those keys replays them (200, same id)",
      all(s == 200 and b["replayed"] is True and b["id"] == lost_ids.get(i) for i, (s, b) in zip(lost, again)))

# --- no duplicates --------------------------------------------------------
per_learner = {}
cursor = None
pages = 0
while True:
    url = f"{second.url}/v1/submissions?rubric_id={RUBRIC_ID}&limit=500" + (f"&cursor={cursor}" if cursor else "")
    status, page = request(url, key=GRADER)
    if status != 200:
        check("listing submissions", False, page)
        break
    pages += 1
    for item in page["items"]:
        per_learner.setdefault(item["learner_id"], []).append(item["id"])
    cursor = page.get("next_cursor")
    if not cursor or pages > 100:
        break
dupes = {k: v for k, v in per_learner.items() if len(v) != 1}
check(f"listing: {TOTAL} learners, each key stored exactly once",
      len(per_learner) == TOTAL and not dupes, f"{len(per_learner)} learners, duplicates {list(dupes.items())[:5]}")
expected_ids = {f"learner-{i:05d}": (acked[i][1]["id"] if i in acked else lost_ids.get(i)) for i in range(TOTAL)}
check("listed ids are the ids the clients were given",
      all(per_learner.get(k, [None])[0] == v for k, v in expected_ids.items()))

second.stop()
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
