"""Developer tooling that users do not deploy: the local stack, simulators, the demo,
the dashboard builder and the test harness. Installed from ``tools/`` (distribution
``ioc-dev``); the ``ioc`` command finds its sub-commands through the ``ioc.cli``
entry-point group, so deployed code never imports this package."""
