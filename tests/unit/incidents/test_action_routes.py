"""The incident actions are one table (ioc/api/incidents.py ``ACTIONS``); the API it
builds is the one the console and the docs know: these paths, summaries, statuses and
operation ids."""

from __future__ import annotations

from ioc.api.app import create_app

EXPECTED = {
    "ack": ("Acknowledge", "200"),
    "start": ("Start work (in progress)", "200"),
    "resolve": ("Resolve (a note is required)", "200"),
    "close": ("Close a resolved incident", "200"),
    "reopen": ("Reopen", "200"),
    "note": ("Add a note to the timeline", "200"),
    "assign": ("Assign a person or department", "200"),
    "severity": ("Change the severity", "200"),
    "attach": ("Attach alerts", "200"),
    "detach": ("Detach alerts", "200"),
    "merge": ("Merge other incidents into this", "200"),
    "split": ("Move alerts into a new incident", "201"),
    "steps/{step_id}/done": ("SOP step done", "200"),
}


def test_every_action_keeps_its_path_summary_status_and_operation_id() -> None:
    paths = create_app().openapi()["paths"]
    actions = {p.removeprefix("/v1/incidents/{incident_id}/"): v for p, v in paths.items()
               if p.startswith("/v1/incidents/{incident_id}/")}
    assert set(actions) == set(EXPECTED)
    for name, (summary, status) in EXPECTED.items():
        op = actions[name]["post"]
        assert (op["summary"], next(iter(op["responses"]))) == (summary, status), name
        assert op["tags"] == ["incidents"]
        short = name if "/" not in name else "step_done"
        assert op["operationId"].startswith(f"{short}_v1_incidents"), op["operationId"]
        params = {p["name"] for p in op["parameters"] if p["in"] == "path"}
        assert "incident_id" in params
