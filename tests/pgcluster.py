"""A throwaway PostgreSQL cluster on 127.0.0.1 for the team-store tests and benchmarks.

Debian's server binaries (``apt-get install postgresql``) live in
/usr/lib/postgresql/<version>/bin, off PATH. PostgreSQL refuses to run as
root, so under root (CI) initdb and the server run as the ``postgres`` user.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

SUPERUSER = "nbt"
PASSWORD = "s3cret-Pa55-word"   # host connections need it (scram); the admin uses the unix socket


def server_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    which = shutil.which("pg_ctl")
    return Path(which).parent if which else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """initdb + pg_ctl start in a private folder; ``stop()``/``start()`` simulate an outage."""

    def __init__(self) -> None:
        bindir = server_bin()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql")
        self.bin = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="nbtrack-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.dir, "postgres")
        pwfile = self.dir / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self._as:
            shutil.chown(pwfile, "postgres")
        self._run([str(self.bin / "initdb"), "-D", str(self.data), "--auth-local=trust",
                   "--auth-host=scram-sha-256", "-U", SUPERUSER, f"--pwfile={pwfile}", "--no-sync", "-E", "UTF8"])
        self.start()

    def _run(self, cmd: list[str]) -> None:
        proc = subprocess.run(self._as + cmd, capture_output=True, text=True, cwd=self.dir)
        if proc.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")

    def start(self) -> None:
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c max_connections=200 -c synchronous_commit=off")
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l",
                   str(self.dir / "server.log"), "-w", "start"])

    def stop(self) -> None:
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])

    def destroy(self) -> None:
        try:
            self.stop()
        except RuntimeError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def sql(self, statement: str, dbname: str = "postgres", user: str = SUPERUSER) -> str:
        psql = self.bin / "psql"
        cmd = [str(psql) if psql.exists() else "psql", "-h", str(self.dir), "-p", str(self.port), "-U", user,
               "-d", dbname, "-v", "ON_ERROR_STOP=1", "-At", "-c", statement]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PGPASSWORD": ""})
        if proc.returncode:
            raise RuntimeError(proc.stderr.strip())
        return proc.stdout

    def new_database(self) -> str:
        name = "runs_" + uuid.uuid4().hex[:10]
        self.sql(f"CREATE DATABASE {name}")
        return name

    def url(self, dbname: str, user: str = SUPERUSER, password: str | None = PASSWORD) -> str:
        text = f"ducklake:postgres:dbname={dbname} host=127.0.0.1 port={self.port} user={user}"
        return text + (f" password={password}" if password else "")

    def wait_down(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)):
                    return
            time.sleep(0.05)
