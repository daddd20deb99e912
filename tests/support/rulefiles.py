"""Rule files for tests: PM2.5 threshold rules built from keyword arguments (one place
writes their YAML), and a worker environment naming a folder of them
(``IOC__ALERTS__RULES_DIR``), so tests differ only in what they vary."""

from __future__ import annotations

from pathlib import Path


def pm25_entry(rule_id: str, *, scope: str | None = "commune", aggregate: str | None = "avg",
               window: str | None = "1m", op: str = ">", threshold: float = 100,
               clear: float | None = 50, for_: str | None = "0m",
               keep_firing_for: str | None = None, renotify_every: str | None = None,
               escalate: str | None = None, severity: str = "warning",
               labels: dict[str, str] | None = None, summary: str = "PM2.5 {value:.0f}",
               summary_en: str | None = None, extra: str = "") -> str:
    """One PM2.5 threshold rule, as an entry of a group's ``rules`` list (``None``
    leaves a key out: the loader's default; ``extra``: more YAML keys, one a line)."""
    keys: list[tuple[str, object]] = [
        ("feed", "sensor"), ("metric", "pm25"), ("scope", scope), ("aggregate", aggregate),
        ("window", window), ("op", f'"{op}"'), ("threshold", threshold), ("clear", clear),
        ("for", for_), ("keep_firing_for", keep_firing_for),
        ("renotify_every", renotify_every), ("severity", severity),
        ("escalate", escalate)]
    lines = [f"      - id: {rule_id}"]
    lines += [f"        {k}: {v}" for k, v in keys if v is not None]
    lines += [f"        {line}" for line in extra.splitlines() if line.strip()]
    if labels:
        body = ", ".join(f'{k}: "{v}"' for k, v in labels.items())
        lines.append(f"        labels: {{ {body} }}")
    en = summary_en if summary_en is not None else summary
    lines.append("        annotations:")
    lines.append(f'          summary: {{ vi: "{summary}", en: "{en}" }}')
    return "\n".join(lines) + "\n"


def rule_file(group: str, *entries: str) -> str:
    """A rule file of one group holding ``entries`` (:func:`pm25_entry` or YAML text)."""
    return f"groups:\n  - name: {group}\n    rules:\n" + "".join(entries)


def pm25_rule(rule_id: str, *, for_: str = "0m", label: str | None = None,
              summary: str = "PM2.5 {value:.0f}") -> str:
    """A commune-scoped 1-minute average PM2.5 rule (> 100, clears at 50); ``label``
    adds ``test_run: <label>`` (tests find their alerts in Alertmanager by it)."""
    return rule_file(rule_id, pm25_entry(rule_id, for_=for_, summary=summary,
                                         labels={"test_run": label} if label else None))


def rules_env(tmp: Path, *rules: str) -> dict[str, str]:
    """Write ``rules`` into ``tmp/rules`` and return the worker environment naming it."""
    folder = tmp / "rules"
    folder.mkdir(exist_ok=True)
    for n, text in enumerate(rules):
        (folder / f"r{n}.yaml").write_text(text)
    return {"IOC__ALERTS__RULES_DIR": str(folder)}
