"""The local service stack without Docker.

``ioc stack up`` installs what is missing (Debian packages, a TimescaleDB build, the
Kafka jars) and starts Kafka (KRaft), PostgreSQL 15 with TimescaleDB and PostGIS,
Prometheus, Mailpit (SMTP) and Alertmanager on loopback. Everything lives under the git-ignored
``Settings.stack.root`` folder (``.stack/``)::

    .stack/
      logs/<service>.log     stdout+stderr of each service
      run/<service>.pid      the pid we started (plus <service>.json: pid, start time, boot)
      kafka/                 pom.xml, libs/ (jars), server.properties, data/
      postgres/data/         the cluster (owned by the ``postgres`` OS user under root)
      prometheus/data/  alertmanager/data/
      mailpit/               the Mailpit build (bin/), its Go caches, mailpit.db
      build/timescaledb/     the TimescaleDB source build
      m2/                    Maven's local repository

Processes are started and stopped by :mod:`iocdev.supervise`. Modules: :mod:`apt` (Debian packages),
:mod:`timescale` (source build), one module per service, :mod:`ready` (readiness
polling) and :mod:`manager` (``up``/``down``/``status``).
"""

from __future__ import annotations

from iocdev.stack.manager import SERVICES, ServiceStatus, down, status, up

__all__ = ["SERVICES", "ServiceStatus", "down", "status", "up"]
