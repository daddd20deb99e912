"""TimescaleDB (Apache-2 edition) built from Debian 13's source package.

Debian 12 has no TimescaleDB package. The source package of Debian 13 ("trixie") is
fetched with apt-get using private apt options (its own sources.list, lists and cache
under ``.stack/build/timescaledb/apt``), so the machine's apt sources are never touched,
then built against PostgreSQL 15 with ``-DAPACHE_ONLY=ON`` and installed into
PostgreSQL's library and extension folders. Skipped when already installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from iocdev.errors import StackError
from iocdev.stack.apt import privileged

SOURCE_LINE = (
    "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
    "http://deb.debian.org/debian trixie main\n"
)
BUILD_PACKAGES = ["postgresql-server-dev-15", "dpkg-dev", "libssl-dev", "cmake", "gcc",
                  "make", "debian-archive-keyring"]


def pg_config(name: str, pg_config_bin: str) -> Path:
    out = subprocess.run([pg_config_bin, name], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def installed(pg_config_bin: str) -> bool:
    """True when PostgreSQL already has the timescaledb library and control file."""
    lib = pg_config("--pkglibdir", pg_config_bin) / "timescaledb.so"
    control = pg_config("--sharedir", pg_config_bin) / "extension" / "timescaledb.control"
    return lib.exists() and control.exists()


def _run(argv: list[str], *, cwd: Path, log: Path) -> None:
    with log.open("ab") as out:
        out.write(f"\n=== (in {cwd}) {' '.join(argv)}\n".encode())
        out.flush()
        code = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, check=False).returncode
    if code != 0:
        raise StackError("timescaledb", f"`{' '.join(argv)}` failed with code {code}",
                         str(log))


def build_and_install(work: Path, *, pg_config_bin: str, log: Path) -> None:
    """Fetch, build and install TimescaleDB unless it is installed already."""
    if installed(pg_config_bin):
        return
    apt_dir = work / "apt"
    (apt_dir / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (apt_dir / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    (apt_dir / "sources.list").write_text(SOURCE_LINE)
    apt_opts = [
        "-o", f"Dir::Etc::SourceList={apt_dir / 'sources.list'}",
        "-o", "Dir::Etc::SourceParts=/dev/null",
        "-o", f"Dir::State::Lists={apt_dir / 'lists'}",
        "-o", f"Dir::Cache={apt_dir / 'cache'}",
    ]
    src = work / "src"
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    _run(["apt-get", *apt_opts, "update"], cwd=work, log=log)
    _run(["apt-get", *apt_opts, "source", "--download-only", "timescaledb"], cwd=src, log=log)
    dscs = sorted(src.glob("timescaledb_*.dsc"))
    if not dscs:
        raise StackError("timescaledb", "no timescaledb_*.dsc was downloaded", str(log))
    _run(["dpkg-source", "-x", dscs[-1].name, "ts"], cwd=src, log=log)
    tree = src / "ts"
    _run(["./bootstrap", "-DAPACHE_ONLY=ON", "-DREGRESS_CHECKS=OFF", "-DTAP_CHECKS=OFF",
          "-DWARNINGS_AS_ERRORS=OFF", f"-DPG_CONFIG={pg_config_bin}"], cwd=tree, log=log)
    _run(["make", "-C", "build", "-j2"], cwd=tree, log=log)
    _run(privileged(["make", "-C", "build", "install"]), cwd=tree, log=log)
    if not installed(pg_config_bin):
        raise StackError("timescaledb", "installed, but timescaledb.so is still missing",
                         str(log))
