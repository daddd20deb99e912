"""``ioc demo``: the main job end to end (see docs/demo.md).

Modules: :mod:`orchestrate` (child processes by recorded pid), :mod:`queries` (the SQL
the demo reads), :mod:`live` (the terminal view), :mod:`report` (HTML + PNG report)
and :mod:`run` (the steps in order).
"""
