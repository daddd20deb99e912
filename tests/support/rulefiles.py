"""Threshold rules for worker tests: one PM2.5 rule per test run, written where a worker
reads its rules (``IOC__ALERTS__RULES_DIR``), so tests differ only in what they vary."""

from __future__ import annotations

from pathlib import Path


def pm25_rule(rule_id: str, *, for_: str = "0m", label: str | None = None,
              summary: str = "PM2.5 {value:.0f}") -> str:
    """A commune-scoped 1-minute average PM2.5 rule (> 100, clears at 50); ``label``
    adds ``test_run: <label>`` (tests find their alerts in Alertmanager by it)."""
    labels = f'        labels: {{ test_run: "{label}" }}\n' if label else ""
    return f"""groups:
  - name: {rule_id}
    rules:
      - id: {rule_id}
        feed: sensor
        metric: pm25
        scope: commune
        aggregate: avg
        window: 1m
        op: ">"
        threshold: 100
        clear: 50
        for: {for_}
        severity: warning
{labels}        annotations:
          summary: {{ vi: "{summary}", en: "{summary}" }}
"""


def rules_env(tmp: Path, *rules: str) -> dict[str, str]:
    """Write ``rules`` into ``tmp/rules`` and return the worker environment naming it."""
    folder = tmp / "rules"
    folder.mkdir(exist_ok=True)
    for n, text in enumerate(rules):
        (folder / f"r{n}.yaml").write_text(text)
    return {"IOC__ALERTS__RULES_DIR": str(folder)}
