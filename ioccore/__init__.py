"""The core every layer shares: settings, error tree, metrics, logs, topics, event
contracts and the database schema. It imports no domain, stream or entry-point package
(an import-linter contract in ``pyproject.toml`` holds that)."""
