"""The Flink peer's runtime, set up on demand and never committed.

Under ``<stack home>/flink/`` (git-ignored, shared by every checkout using that stack):
- ``venv/``: a virtualenv with PyFlink from PyPI (``apache-flink``), which brings the
  Flink runtime jars and starts a local mini-cluster in its own JVM (Java 17, from the
  stack's Debian packages);
- ``lib/``: the Kafka SQL connector, the JDBC connector with its PostgreSQL dialect, and
  the PostgreSQL driver from Maven Central (``mvn dependency:copy-dependencies`` of a
  generated pom, Maven's repository being the stack's ``m2/``).

Each part is redone only when its marker (named after the versions) is missing.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ioccore.settings import KafkaSettings, Settings

PYFLINK = "2.2.1"
ARTIFACTS = (
    ("org.apache.flink", "flink-sql-connector-kafka", "5.0.0-2.2"),  # 2.3 has none yet
    ("org.apache.flink", "flink-connector-jdbc-core", "4.0.0-2.0"),
    ("org.apache.flink", "flink-connector-jdbc-postgres", "4.0.0-2.0"),
    ("org.postgresql", "postgresql", "42.7.4"),
)
EXCLUDED = "flink-connector-base"
"""Already inside PyFlink's flink-dist (a second copy of another version would clash)."""

POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.ioc</groupId>
  <artifactId>flink-peer</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
{deps}
  </dependencies>
</project>
"""
SHADED = "org.apache.flink.kafka.shaded."
"""The Kafka SQL connector relocates the Kafka client under this package."""


@dataclass(frozen=True)
class FlinkRuntime:
    home: Path

    @property
    def python(self) -> Path:
        return self.home / "venv" / "bin" / "python"

    @property
    def lib(self) -> Path:
        return self.home / "lib"

    def jars(self) -> list[Path]:
        return sorted(self.lib.glob("*.jar"))


def _run(argv: list[str], log: Path) -> None:
    with log.open("ab") as out:
        out.write(f"\n=== {' '.join(argv)}\n".encode())
        out.flush()
        code = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, check=False).returncode
    if code != 0:
        raise RuntimeError(f"{argv[0]} failed ({code}); see {log}")


def ensure_runtime(settings: Settings) -> FlinkRuntime:
    """The PyFlink virtualenv and connector jars, installed if missing (a few minutes the
    first time: PyFlink is about 400 MB)."""
    rt = FlinkRuntime(settings.stack.root / "flink")
    rt.home.mkdir(parents=True, exist_ok=True)
    log = rt.home / "install.log"
    venv_marker = rt.home / "venv" / f".complete-{PYFLINK}"
    if not venv_marker.exists():
        if shutil.which("java") is None:
            raise RuntimeError("the Flink peer needs Java 17 (`ioc stack up` installs it)")
        if not rt.python.exists():
            _run([sys.executable, "-m", "venv", str(rt.home / "venv")], log)
        _run([str(rt.python), "-m", "pip", "install", "-q", "--upgrade", "pip"], log)
        _run([str(rt.python), "-m", "pip", "install", "-q", f"apache-flink=={PYFLINK}"], log)
        venv_marker.touch()
    deps = "\n".join(f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
                     f"<version>{v}</version></dependency>" for g, a, v in ARTIFACTS)
    digest = hashlib.sha256(deps.encode()).hexdigest()[:12]
    lib_marker = rt.lib / f".complete-{digest}"
    if not lib_marker.exists():
        if rt.lib.exists():
            shutil.rmtree(rt.lib)
        pom = rt.home / "pom.xml"
        pom.write_text(POM.format(deps=deps))
        _run(["mvn", "-q", "-B", "-f", str(pom),
              f"-Dmaven.repo.local={settings.stack.root / 'm2'}",
              "dependency:copy-dependencies", f"-DoutputDirectory={rt.lib}",
              "-DincludeScope=runtime", f"-DexcludeArtifactIds={EXCLUDED}"], log)
        lib_marker.touch()
    return rt


def kafka_properties(kafka: KafkaSettings) -> dict[str, str]:
    """The Kafka client's security properties in Java spelling, from the same settings
    every other client uses (``KafkaSettings.client_options``), for the shaded client."""
    opts = kafka.client_options()
    props = {"security.protocol": str(opts["security_protocol"])}
    mechanism = opts.get("sasl_mechanism")
    if mechanism:
        props["sasl.mechanism"] = str(mechanism)
        module = ("plain.PlainLoginModule" if mechanism == "PLAIN"
                  else "scram.ScramLoginModule")
        user = str(opts.get("sasl_plain_username") or "")
        password = str(opts.get("sasl_plain_password") or "")
        props["sasl.jaas.config"] = (
            f"{SHADED}org.apache.kafka.common.security.{module} required "
            f'username="{_jaas(user)}" password="{_jaas(password)}";')
    return props


def _jaas(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
