"""The whole grading flow through a client generated from openapi/openapi.json
by openapi-python-client (package `dlgrade_client`), and nothing else: no
hand-written HTTP. Every number the service returns is checked against a value
computed here.

Run by tests/contract/client_flow.sh, which generates and installs the client
and starts the server. Environment: DLGRADE_URL (base URL), DLGRADE_ADMIN_KEY
(the bootstrap admin key). Prints one line per check and finally
'N passed, M failed'; exits 1 if any check failed.
"""

import math
import os
import sys
import traceback

from dlgrade_client import AuthenticatedClient, Client
from dlgrade_client.api.grading import (
    create_submission,
    get_gradebook,
    get_statistics,
    get_submission,
    grade_preview,
    list_submissions,
    regrade_rubric,
)
from dlgrade_client.api.health import healthz, readyz
from dlgrade_client.api.keys import create_key
from dlgrade_client.api.rubrics import create_rubric, create_variant, get_rubric, update_rubric
from dlgrade_client.models import (
    CreateKey,
    GradeRequest,
    Gradebook,
    NewKey,
    Problem,
    RegradeReport,
    RegradeRequest,
    Role,
    Rubric,
    RubricCreated,
    RubricStatistics,
    RubricView,
    SubmissionPage,
    SubmissionRequest,
    SubmissionView,
    VariantRequest,
    VariantView,
)

URL = os.environ["DLGRADE_URL"]
# Lines 'ok ...'/'FAIL ...' of the spec coverage check made by client_flow.sh
# (every operation generated, one content type per response); counted here.
COVERAGE = os.environ.get("CLIENT_FLOW_COVERAGE")
ADMIN = os.environ["DLGRADE_ADMIN_KEY"]
TOL = 1e-9

PASSED = 0
FAILED = 0
STATE = {}


def check(name):
    """Runs the decorated function as one named check, counting the outcome."""

    def run(fn):
        global PASSED, FAILED
        try:
            fn()
        except Exception:  # noqa: BLE001 - every failure is reported and counted
            FAILED += 1
            print(f"FAIL {name}")
            traceback.print_exc(limit=3, file=sys.stdout)
        else:
            PASSED += 1
            print(f"ok   {name}")
        return fn

    return run


def close(a, b):
    assert math.isclose(a, b, rel_tol=TOL, abs_tol=TOL), f"{a} != {b}"


def body_of(resp, status, kind):
    assert resp.status_code == status, f"status {resp.status_code} != {status}: {resp.content[:500]!r}"
    assert isinstance(resp.parsed, kind), f"parsed {type(resp.parsed).__name__}, wanted {kind.__name__}"
    return resp.parsed


def conv_rubric(points):
    """Problem 4b of the reference CNN exam: 5 filters, kernel 7, stride 3,
    padding 1 on 26x26x26. The key is computed by the service's architecture
    engine: floor((26 - 7 + 2*1)/3) + 1 = 8, depth = 5 filters."""
    spatial = (26 - 7 + 2 * 1) // 3 + 1
    return Rubric.from_dict(
        {
            "title": "Conv output size",
            "prompt": "5 filters, kernel 7, stride 3, padding 1 on a 26x26x26 input: output size?",
            "parts": [
                {
                    "id": "b",
                    "max_points": points,
                    "answer": {
                        "type": "shape",
                        "expected": {
                            "compute": {
                                "engine": "architecture",
                                "request": {
                                    "input_shape": [26, 26, 26], "layout": "HWC",
                                    "layers": [
                                        {"type": "conv2d", "filters": 5, "kernel_size": 7,
                                         "strides": 3, "padding": 1}
                                    ],
                                },
                                "select": "/layers/0/output_shape",
                            }
                        },
                    },
                    "alternatives": [
                        {"id": "spatial_only", "dims": [0, 1], "points": 1,
                         "feedback": "the depth is the number of filters, 5"}
                    ],
                }
            ],
            "tests": [
                {"name": "full", "answers": {"b": f"{spatial}x{spatial}x5"}, "expected_score": points},
                {"name": "spatial only", "answers": {"b": f"{spatial} x {spatial}"}, "expected_score": 1},
            ],
        }
    )


if COVERAGE:
    with open(COVERAGE) as f:
        for line in f:
            if line.startswith("ok"):
                PASSED += 1
            elif line.startswith("FAIL"):
                FAILED += 1

admin = AuthenticatedClient(base_url=URL, token=ADMIN, raise_on_unexpected_status=True)
anonymous = Client(base_url=URL, raise_on_unexpected_status=True)

# Learner answers and the points each is worth under version 1 (max 2) and
# version 2 (max 3) of the rubric.
ANSWERS = {"ann": ("8x8x5", 2.0, 3.0), "bob": ("8 x 8", 1.0, 1.0), "cy": ("3x3x3", 0.0, 0.0)}


@check("healthz and readyz answer 200")
def _():
    assert healthz.sync_detailed(client=anonymous).status_code == 200
    assert readyz.sync_detailed(client=anonymous).status_code == 200


@check("admin creates an instructor key and a grader key")
def _():
    for role in (Role.INSTRUCTOR, Role.GRADER):
        key = body_of(create_key.sync_detailed(client=admin, body=CreateKey(role=role, label=f"flow-{role.value}")),
                      201, NewKey)
        assert key.role == role
        assert key.key.startswith("dlg_") and key.key.startswith(key.prefix), key.prefix
        STATE[role.value] = AuthenticatedClient(base_url=URL, token=key.key, raise_on_unexpected_status=True)
        STATE[role.value + "_key"] = key.key


@check("instructor creates the rubric: version 1, max 2, self-tests 3/3 (2 own + the generated model answer), computed key 8x8x5")
def _():
    created = body_of(create_rubric.sync_detailed(client=STATE["instructor"], body=conv_rubric(2)), 201, RubricCreated)
    assert created.version == 1
    close(created.max_score, 2.0)
    # The rubric's two tests plus the generated one (the model answer of part b).
    assert created.self_tests.total == 3 and created.self_tests.passed == 3, created.self_tests
    assert created.self_tests.failures == [], created.self_tests
    resolved = created.resolved.to_dict()
    assert resolved["parts"][0]["answer"]["expected"] == [8, 8, 5], resolved["parts"][0]["answer"]
    STATE["rubric_id"] = created.id
    view = body_of(get_rubric.sync_detailed(created.id, client=STATE["grader"]), 200, RubricView)
    assert view.version == 1 and view.id == created.id


@check("grade preview: inline rubric without key, stored rubric with key; 1 of 2 for the spatial size")
def _():
    inline = GradeRequest.from_dict({"rubric": conv_rubric(2).to_dict(), "answers": {"b": "8 x 8"}})
    result = grade_preview.sync_detailed(client=anonymous, body=inline)
    assert result.status_code == 200, result.content
    close(result.parsed.score, 1.0)
    close(result.parsed.max_score, 2.0)
    assert result.parsed.parts[0].matched_rule == "spatial_only"
    stored = GradeRequest.from_dict({"rubric_id": STATE["rubric_id"], "answers": {"b": "(8, 8, 5)"}})
    result = grade_preview.sync_detailed(client=STATE["grader"], body=stored)
    assert result.status_code == 200, result.content
    close(result.parsed.score, 2.0)
    anonymous_stored = grade_preview.sync_detailed(client=anonymous, body=stored)
    assert anonymous_stored.status_code == 401 and isinstance(anonymous_stored.parsed, Problem)


def submission(learner, answer):
    return SubmissionRequest.from_dict(
        {"rubric_id": STATE["rubric_id"], "learner_id": learner, "answers": {"b": answer}}
    )


@check("submit with an Idempotency-Key: 201, not replayed, 2 of 2, attempt 1")
def _():
    resp = create_submission.sync_detailed(
        client=STATE["grader"], body=submission("ann", ANSWERS["ann"][0]), idempotency_key="flow-ann-1"
    )
    sub = body_of(resp, 201, SubmissionView)
    assert sub.replayed is False
    close(sub.score, ANSWERS["ann"][1])
    close(sub.max_score, 2.0)
    assert sub.attempt == 1 and sub.rubric_version == 1
    assert sub.status.value == "fully_graded"
    STATE["ann"] = sub


@check("retry with the same key and body: 200, replayed, same id and score")
def _():
    resp = create_submission.sync_detailed(
        client=STATE["grader"], body=submission("ann", ANSWERS["ann"][0]), idempotency_key="flow-ann-1"
    )
    sub = body_of(resp, 200, SubmissionView)
    assert sub.replayed is True
    assert sub.id == STATE["ann"].id
    close(sub.score, STATE["ann"].score)
    assert sub.attempt == 1


@check("same key, different body: 422 problem")
def _():
    resp = create_submission.sync_detailed(
        client=STATE["grader"], body=submission("ann", "1x1x1"), idempotency_key="flow-ann-1"
    )
    problem = body_of(resp, 422, Problem)
    assert problem.status == 422


@check("two more learners: 1 of 2 (spatial only) and 0 of 2")
def _():
    for learner in ("bob", "cy"):
        answer, points, _ = ANSWERS[learner]
        sub = body_of(
            create_submission.sync_detailed(client=STATE["grader"], body=submission(learner, answer)), 201,
            SubmissionView,
        )
        close(sub.score, points)
        STATE[learner] = sub
    assert STATE["bob"].result.parts[0].matched_rule == "spatial_only"


@check("read the submission back: equal to what was returned")
def _():
    got = body_of(get_submission.sync_detailed(STATE["ann"].id, client=STATE["grader"]), 200, SubmissionView)
    want = STATE["ann"].to_dict()
    have = got.to_dict()
    for field in ("id", "rubric_id", "rubric_version", "learner_id", "attempt", "score", "max_score", "status",
                  "answers", "created_at", "result"):
        assert have[field] == want[field], f"{field}: {have[field]!r} != {want[field]!r}"


@check("list submissions: 3 in all, paged 2 + 1 with a cursor")
def _():
    page = body_of(list_submissions.sync_detailed(client=STATE["grader"], rubric_id=STATE["rubric_id"]), 200,
                   SubmissionPage)
    assert sorted(s.learner_id for s in page.items) == sorted(ANSWERS), [s.learner_id for s in page.items]
    first = body_of(list_submissions.sync_detailed(client=STATE["grader"], rubric_id=STATE["rubric_id"], limit=2),
                    200, SubmissionPage)
    assert len(first.items) == 2 and isinstance(first.next_cursor, str)
    rest = body_of(list_submissions.sync_detailed(client=STATE["grader"], rubric_id=STATE["rubric_id"], limit=2,
                                                  cursor=first.next_cursor), 200, SubmissionPage)
    assert len(rest.items) == 1 and not rest.next_cursor
    ids = {s.id for s in first.items} | {s.id for s in rest.items}
    assert ids == {STATE[k].id for k in ANSWERS}


@check("gradebook as JSON: one row per learner, scores and percents")
def _():
    book = body_of(get_gradebook.sync_detailed(STATE["rubric_id"], client=STATE["instructor"]), 200, Gradebook)
    rows = {r.learner_id: r for r in book.rows}
    assert set(rows) == set(ANSWERS)
    for learner, (_, points, _) in ANSWERS.items():
        close(rows[learner].score, points)
        close(rows[learner].max_score, 2.0)
        close(rows[learner].percent, points / 2.0 * 100.0)
        assert rows[learner].attempts == 1
        assert rows[learner].submission_id == STATE[learner].id


@check("gradebook as CSV through the generated client")
def _():
    try:
        # The CSV as an operation of its own (the fix asked of the spec).
        from dlgrade_client.api.grading import get_gradebook_csv

        resp = get_gradebook_csv.sync_detailed(STATE["rubric_id"], client=STATE["instructor"])
    except ImportError:
        # Today: `Accept: text/csv` on getGradebook, whose 200 lists two media
        # types. A client of its own: `with_headers` on a used client changes
        # that client's headers too.
        csv_client = AuthenticatedClient(base_url=URL, token=STATE["instructor_key"],
                                         headers={"Accept": "text/csv"}, raise_on_unexpected_status=True)
        resp = get_gradebook.sync_detailed(STATE["rubric_id"], client=csv_client)
    assert resp.status_code == 200
    assert resp.headers.get("content-type", "").startswith("text/csv"), resp.headers
    lines = resp.content.decode().splitlines()
    assert lines[0].startswith("learner_id,score,max_score,percent,status,attempt,attempts"), lines[0]
    assert len(lines) == 1 + len(ANSWERS), lines
    assert lines[1].startswith("ann,2,2,100.00,fully_graded,1,1,"), lines[1]
    assert lines[2].startswith("bob,1,2,50.00,fully_graded,1,1,"), lines[2]
    assert lines[3].startswith("cy,0,2,0.00,fully_graded,1,1,"), lines[3]


@check("statistics: count, mean, median, population std dev, facility, distribution, rule counts")
def _():
    stats = body_of(get_statistics.sync_detailed(STATE["rubric_id"], client=STATE["instructor"]), 200,
                    RubricStatistics)
    scores = [points for _, points, _ in ANSWERS.values()]
    mean = sum(scores) / len(scores)
    assert stats.count == len(scores)
    close(stats.mean_score, mean)
    close(stats.median_score, sorted(scores)[len(scores) // 2])
    close(stats.std_dev, math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores)))
    part = stats.parts[0]
    assert part.part_id == "b"
    close(part.mean, mean)
    close(part.facility, mean / 2.0 * 100.0)
    rules = {r.rule: r.count for r in part.rule_counts}
    assert rules.get("spatial_only") == 1, rules
    bins = [0] * 10
    for s in scores:
        bins[min(int(s / 2.0 * 100.0 // 10), 9)] += 1
    assert [b.count for b in stats.distribution] == bins, [b.count for b in stats.distribution]


@check("version 2 (3 points) and a dry-run regrade: 3 examined, ann +1, nothing stored")
def _():
    created = body_of(update_rubric.sync_detailed(STATE["rubric_id"], client=STATE["instructor"], body=conv_rubric(3)),
                      201, RubricCreated)
    assert created.version == 2
    close(created.max_score, 3.0)
    report = body_of(regrade_rubric.sync_detailed(STATE["rubric_id"], client=STATE["instructor"],
                                                  body=RegradeRequest(dry_run=True)), 200, RegradeReport)
    assert report.dry_run is True and report.version == 2
    assert report.examined == len(ANSWERS), report.examined
    changes = {c.learner_id: c for c in report.changed}
    expected = {k: (v1, v2) for k, (_, v1, v2) in ANSWERS.items() if v1 != v2}
    assert set(changes) == set(expected), changes
    for learner, (old, new) in expected.items():
        close(changes[learner].old_score, old)
        close(changes[learner].new_score, new)
        close(changes[learner].delta, new - old)
        assert changes[learner].old_version == 1
        assert changes[learner].submission_id == STATE[learner].id
    still = body_of(get_submission.sync_detailed(STATE["ann"].id, client=STATE["instructor"]), 200, SubmissionView)
    close(still.score, ANSWERS["ann"][1])
    assert still.rubric_version == 1


def conv_template():
    """conv_rubric(2) as a template: the input size n and the filter count f
    vary; n - 7 + 2 must be a multiple of the stride 3."""
    body = conv_rubric(2).to_dict()
    request = body["parts"][0]["answer"]["expected"]["compute"]["request"]
    request["input_shape"] = ["{{n}}", "{{n}}", 26]
    request["layers"][0]["filters"] = "{{f}}"
    body["prompt"] = "{{f}} filters, kernel 7, stride 3, padding 1 on a {{n}}x{{n}}x26 input: output size?"
    body["template"] = {
        "parameters": {"n": {"default": 26, "min": 11, "max": 62}, "f": {"default": 5, "min": 2, "max": 9}},
        "constraints": [{"expr": "(n - 7 + 2)/3", "integer": True, "min": 2}],
        "tests": [{"name": "model", "answers": {"b": "{{(n - 5)/3 + 1}}x{{(n - 5)/3 + 1}}x{{f}}"},
                   "expected_score": 2}],
    }
    return Rubric.from_dict(body)


@check("a template rubric: the variant of a seed, the same twice, graded with its seed")
def _():
    created = body_of(create_rubric.sync_detailed(client=STATE["instructor"], body=conv_template()), 201, RubricCreated)
    first = body_of(create_variant.sync_detailed(created.id, client=STATE["grader"], body=VariantRequest(seed=7)),
                    200, VariantView)
    again = body_of(create_variant.sync_detailed(created.id, client=STATE["grader"], body=VariantRequest(seed=7)),
                    200, VariantView)
    assert first.to_dict() == again.to_dict()
    params = first.parameters.to_dict()
    n, f = params["n"], params["f"]
    assert (n - 5) % 3 == 0 and 11 <= n <= 62 and 2 <= f <= 9, params
    out = (n - 7 + 2) // 3 + 1
    assert first.prompt == f"{f} filters, kernel 7, stride 3, padding 1 on a {n}x{n}x26 input: output size?"
    assert first.model_answers.to_dict() == {"b": f"({out}, {out}, {f})"}, first.model_answers
    assert first.self_tests.failures == []
    graded = body_of(create_submission.sync_detailed(client=STATE["grader"], body=SubmissionRequest.from_dict(
        {"rubric_id": created.id, "learner_id": "variant-7", "variant_seed": 7,
         "answers": {"b": f"{out}x{out}x{f}"}})), 201, SubmissionView)
    close(graded.score, 2.0)
    assert graded.variant_seed == 7


print(f"{PASSED} passed, {FAILED} failed")
sys.exit(1 if FAILED else 0)
