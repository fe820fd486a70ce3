"""Ticket throughput of tikting against Best Practical Request Tracker 5, side by side (issue 16).

Both servers run on this machine with 2 worker processes each, driven by the same Python client:

- **Request Tracker** 5 from Debian's packages, its own `rt-server` on Starlet (`--max-workers 2`),
  through REST2 on a **session cookie** (a sign-in on /NoAuth/Login.html first): its fastest
  authenticated path. Not with a REST2 auth token, which RT checks with bcrypt on every request.
- **tikting** served as docs/deployment.md says production runs: gunicorn, 2 sync workers,
  DEBUG off, the incident API (`/api/records/incident`) with a bearer token.

Phases, each timed as operations per second (a create, a read, a page of search results, an update
is one operation): create a ticket sequentially and with 4 client threads; read a ticket by id;
search a page of 50 with a status and priority filter; a full-text query (a word of the
descriptions, one ticket in 20 holds it); update status and priority. Rounds interleave the servers
(RT, tikting, RT, tikting …, 3 rounds) and the figures are the medians; after the runs, each
server's memory: the resident set (RSS) of its worker processes, summed (the master too, apart),
and their PSS (shared pages counted once), which is what the two servers really cost.

    .venv/bin/python bench/rt_vs_tikting.py --install-rt          # apt-get RT once, then measure
    .venv/bin/python bench/rt_vs_tikting.py --database sqlite     # RT and tikting on SQLite
    .venv/bin/python bench/rt_vs_tikting.py --database postgresql # both on PostgreSQL
    .venv/bin/python bench/rt_vs_tikting.py --skip-rt             # tikting alone

Without RT installed (or `--install-rt` failing) the script says why and measures tikting alone.
It drops and re-creates the PostgreSQL databases `--pg-prefix`_tikting and `--pg-prefix`_rt and
keeps everything else under `--workdir`. The figures are wall-clock: on a loaded machine compare
the ratios, which both servers share the load of.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from _common import fresh_database  # noqa: E402

RT_PACKAGES = ["request-tracker5", "rt5-db-sqlite", "rt5-db-postgresql", "starlet"]
RT_SERVER = Path("/usr/share/request-tracker5/libexec/rt-server")
RT_SETUP = Path("/usr/sbin/rt-setup-database-5")
RT_FULLTEXT = Path("/usr/sbin/rt-setup-fulltext-index-5")
RT_INDEXER = Path("/usr/sbin/rt-fulltext-indexer-5")
WORKERS = 2
THREADS = 4
WORDS = [
    *("network", "printer", "mailbox", "laptop", "password", "vpn", "outage", "disk", "backup", "license"),
    *("monitor", "keyboard", "database", "certificate", "firewall", "invoice", "badge", "phone", "wifi"),
    "storage",
]
NEEDLE = "kerberos"  # in one ticket's description of every 20: the full-text query's word
STATUSES = ("new", "open")  # RT's; tikting's equivalents below
TIKTING_STATUS = {"new": "new", "open": "in_progress", "stalled": "on_hold", "resolved": "resolved"}
FILTER_STATUS, FILTER_PRIORITY = "open", 3  # the filtered search: about one ticket in eight
# A page of search results asks both servers for the same fields: RT for Subject, Status and
# Priority (besides the id and URL it always gives), tikting for their equivalents (besides id, key
# and URLs). Without `fields`, tikting would send all 45 fields of each incident.
PAGE = {"limit": 50, "fields": "short_description,status,priority"}


# --- HTTP ----------------------------------------------------------------------------------------


class Client:
    """One persistent HTTP/1.1 connection (re-opened when the server closes it), JSON in and out."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = headers

    def call(self, method: str, path: str, body: Any = None, expect: tuple[int, ...] = (200, 201)) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                payload = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()  # a keep-alive connection the server had closed: once more
                if attempt == 2:
                    raise
        if response.status not in expect:
            raise RuntimeError(f"{method} {path}: {response.status} {payload[:300]!r}")
        return json.loads(payload) if payload else None


def wait_http(port: int, path: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            conn.getresponse().read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


# --- Memory --------------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def kib(pid: int, path: str, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Memory:
    workers: int
    rss_mib: float  # the workers' RSS, summed
    pss_mib: float  # the workers' PSS, summed (shared pages counted once)
    master_rss_mib: float


def memory_of(master: int) -> Memory:
    workers = children(master)
    return Memory(
        workers=len(workers),
        rss_mib=sum(kib(p, "status", "VmRSS") for p in workers) / 1024,
        pss_mib=sum(kib(p, "smaps_rollup", "Pss") for p in workers) / 1024,
        master_rss_mib=kib(master, "status", "VmRSS") / 1024,
    )


# --- The servers ---------------------------------------------------------------------------------


def text_for(i: int) -> tuple[str, str]:
    rng = random.Random(i)
    subject = f"{rng.choice(WORDS)} {rng.choice(WORDS)} problem {i}"
    words = [rng.choice(WORDS) for _ in range(30)]
    if i % 20 == 0:
        words.insert(rng.randrange(len(words)), NEEDLE)
    return subject, "The user reports: " + " ".join(words) + "."


@dataclass
class Server:
    name: str
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    ids: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self) -> Client:
        raise NotImplementedError

    def create(self, c: Client, i: int) -> int:
        raise NotImplementedError

    def read(self, c: Client, ticket: int) -> None:
        raise NotImplementedError

    def search_filter(self, c: Client) -> int:
        raise NotImplementedError

    def search_text(self, c: Client) -> int:
        raise NotImplementedError

    def update(self, c: Client, ticket: int, i: int) -> None:
        raise NotImplementedError

    def remember(self, ticket: int) -> None:
        with self.lock:
            self.ids.append(ticket)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def memory(self) -> Memory:
        assert self.process is not None
        return memory_of(self.process.pid)


class RequestTracker(Server):
    """RT 5 on rt-server (Starlet), its database set up afresh from a site config of our own."""

    def __init__(self, port: int, workdir: Path, database: str, pg_name: str) -> None:
        super().__init__("RT", port, workdir)
        self.database = database
        self.pg_name = pg_name
        self.cookie = ""

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "RT_SiteConfig.pm"
        if self.database == "sqlite":
            db = self.workdir / "rt.sqlite3"
            db.unlink(missing_ok=True)
            dbconf = f"Set($DatabaseType, 'SQLite');\nSet($DatabaseName, '{db}');\n"
            fulltext = "Set(%FullTextSearch, Enable => 1, Indexed => 0);\n"
        else:
            drop_database(self.pg_name)  # rt-setup-database creates it
            dbconf = (
                "Set($DatabaseType, 'Pg');\nSet($DatabaseHost, '127.0.0.1');\nSet($DatabasePort, 5432);\n"
                f"Set($DatabaseName, '{self.pg_name}');\nSet($DatabaseUser, 'postgres');\n"
                "Set($DatabasePassword, '');\nSet($DatabaseAdmin, 'postgres');\n"
            )
            fulltext = (
                "Set(%FullTextSearch, Enable => 1, Indexed => 1, Column => 'ContentIndex', "
                "Table => 'AttachmentsIndex');\n"
            )
        config.write_text(
            dbconf
            + fulltext
            + "Set($rtname, 'bench');\nSet($Organization, 'bench');\nSet($Timezone, 'UTC');\n"
            + f"Set($WebDomain, '127.0.0.1');\nSet($WebPort, {self.port});\nSet($WebPath, '');\n"
            + f"Set($WebBaseURL, 'http://127.0.0.1:{self.port}');\n"
            + "Set($LogToSTDERR, 'error');\nSet($LogToSyslog, undef);\nSet($LogToFile, undef);\n"
            + "Set($DevelMode, 0);\nSet($WebSecureCookies, 0);\n"
            + f"Set($MasonDataDir, '{self.workdir / 'mason'}');\n"
            + f"Set($MasonSessionDir, '{self.workdir / 'sessions'}');\n1;\n"
        )
        # Only this file: not Debian's RT_SiteConfig.d (its dbconfig-common database, /rt path).
        for sub in ("site.d", "mason", "sessions"):
            (self.workdir / sub).mkdir(exist_ok=True)
        env = {
            **os.environ,
            "RT_SITE_CONFIG": str(config),
            "RT_SITE_CONFIG_DIR": str(self.workdir / "site.d"),
        }
        self.env = env
        setup = [str(RT_SETUP), "--action", "init"]
        if self.database != "sqlite":
            setup += ["--dba", "postgres", "--dba-password", ""]
        run(setup, env)
        if self.database != "sqlite" and RT_FULLTEXT.exists():
            run([str(RT_FULLTEXT), "--noask", "--dba", "postgres", "--dba-password", ""], env)
        log = open(self.workdir / "rt-server.log", "wb")  # noqa: SIM115 - open while the server runs
        self.process = subprocess.Popen(
            [str(RT_SERVER), "--server", "Starlet", "--port", str(self.port), "--max-workers", str(WORKERS)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_http(self.port, "/NoAuth/Login.html")
        self.cookie = self.sign_in()

    def index(self) -> None:
        """PostgreSQL: RT's full-text index is filled by its indexer (a cron job in production), not
        on write: run it once after the seeding, so the full-text search finds the seeded tickets."""
        if self.database != "sqlite":
            run([str(RT_INDEXER), "--all"], self.env)

    def sign_in(self) -> str:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        body = urllib.parse.urlencode({"user": "root", "pass": "password"})
        conn.request(
            "POST",
            "/NoAuth/Login.html",
            body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        response = conn.getresponse()
        response.read()
        cookies = [v.split(";", 1)[0] for k, v in response.getheaders() if k.lower() == "set-cookie"]
        if response.status not in (200, 302) or not cookies:
            raise RuntimeError(f"RT sign-in failed: {response.status}")
        return "; ".join(cookies)

    def client(self) -> Client:
        # Origin: as a browser sends it; REST2 refuses a cookie-authenticated write without it (CSRF).
        origin = f"http://127.0.0.1:{self.port}"
        return Client(self.port, {"Cookie": self.cookie, "Accept": "application/json", "Origin": origin})

    def create(self, c: Client, i: int) -> int:
        subject, content = text_for(i)
        body = {
            "Queue": "General",
            "Subject": subject,
            "Content": content,
            "ContentType": "text/plain",
            "Status": STATUSES[i % 2],
            "Priority": 1 + (i // 2) % 4,
        }
        ticket = int(c.call("POST", "/REST/2.0/ticket", body)["id"])
        self.remember(ticket)
        return ticket

    def read(self, c: Client, ticket: int) -> None:
        c.call("GET", f"/REST/2.0/ticket/{ticket}")

    def search(self, c: Client, query: str) -> int:
        params = urllib.parse.urlencode(
            {
                "query": query,
                "per_page": 50,
                "page": 1,
                "orderby": "id",
                "order": "DESC",
                "fields": "Subject,Status,Priority",
            }
        )
        return len(c.call("GET", f"/REST/2.0/tickets?{params}")["items"])

    def search_filter(self, c: Client) -> int:
        return self.search(c, f"Status = '{FILTER_STATUS}' AND Priority = {FILTER_PRIORITY}")

    def search_text(self, c: Client) -> int:
        return self.search(c, f"Content LIKE '{NEEDLE}'")

    def update(self, c: Client, ticket: int, i: int) -> None:
        c.call(
            "PUT", f"/REST/2.0/ticket/{ticket}", {"Status": ("open", "stalled")[i % 2], "Priority": 1 + i % 4}
        )


class Tikting(Server):
    """tikting on gunicorn (2 sync workers, DEBUG off), the incident API with a bearer token."""

    def __init__(self, port: int, workdir: Path, url: str) -> None:
        super().__init__("tikting", port, workdir)
        self.url = url
        self.token = ""
        self.version: dict[int, int] = {}

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        fresh_database(self.url)
        env = {
            **os.environ,
            "DATABASE_URL": self.url,
            "TIKTING_VAR_DIR": str(self.workdir / "var"),
            "TIKTING_SECRET_KEY": secrets.token_urlsafe(50),
            "TIKTING_DEBUG": "false",
            "TIKTING_LOG_LEVEL": "WARNING",
        }
        python = str(ROOT / ".venv/bin/python")
        run([python, "manage.py", "migrate", "--verbosity", "0"], env)
        run(
            [
                python,
                "manage.py",
                "createuser",
                "bench",
                "--role",
                "admin",
                "--email",
                "bench@example.org",
                "--no-password",
            ],
            env,
        )
        self.token = (
            run([python, "manage.py", "token", "bench", "--name", "bench"], env).strip().splitlines()[-1]
        )
        log = open(self.workdir / "gunicorn.log", "wb")  # noqa: SIM115 - open while the server runs
        self.process = subprocess.Popen(
            [
                str(ROOT / ".venv/bin/gunicorn"),
                "tikting.wsgi",
                "--workers",
                str(WORKERS),
                "--bind",
                f"127.0.0.1:{self.port}",
            ],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_http(self.port, "/healthz")

    def client(self) -> Client:
        return Client(self.port, {"Authorization": f"Bearer {self.token}", "Accept": "application/json"})

    def create(self, c: Client, i: int) -> int:
        subject, content = text_for(i)
        body = {
            "number": f"B{i:07d}",
            "short_description": subject,
            "description": content,
            "status": TIKTING_STATUS[STATUSES[i % 2]],
            "priority": 1 + (i // 2) % 4,
            "opened_at": "2026-12-01T09:00:00Z",
        }
        created = c.call("POST", "/api/records/incident", body)
        ticket = int(created["id"])
        self.remember(ticket)
        self.version[ticket] = created["version"]  # kept from the answer, as from each PATCH's
        return ticket

    def read(self, c: Client, ticket: int) -> None:
        c.call("GET", f"/api/records/incident/{ticket}")

    def search(self, c: Client, query: dict[str, Any]) -> int:
        return len(
            c.call("GET", f"/api/records/incident?{urllib.parse.urlencode({**query, **PAGE})}")["items"]
        )

    def search_filter(self, c: Client) -> int:
        return self.search(c, {"status": TIKTING_STATUS[FILTER_STATUS], "priority": FILTER_PRIORITY})

    def search_text(self, c: Client) -> int:
        return self.search(c, {"q": NEEDLE})

    def update(self, c: Client, ticket: int, i: int) -> None:
        # The version is the one this client last saw, in the answer to its create or to its last
        # PATCH (tikting refuses a stale one with 409). Until 5 December's second session the
        # create's was not kept, so the first update of each ticket was a GET and a PATCH.
        version = self.version.get(ticket)
        if version is None:
            version = c.call("GET", f"/api/records/incident/{ticket}")["version"]
        body = {
            "status": TIKTING_STATUS[("open", "stalled")[i % 2]],
            "priority": 1 + i % 4,
            "expected_version": version,
        }
        self.version[ticket] = c.call("PATCH", f"/api/records/incident/{ticket}", body)["version"]


def drop_database(name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def run(cmd: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return done.stdout


# --- Phases --------------------------------------------------------------------------------------

Op = Callable[[Server, Client, int], Any]


def timed(server: Server, op: Op, n: int, threads: int = 1) -> float:
    """Operations per second of `n` calls of `op`, over `threads` client threads (one connection each)."""
    clients = [server.client() for _ in range(threads)]
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(k, n, threads):
                op(server, clients[k], i)
        except BaseException as exc:  # noqa: BLE001 - reported after the join
            errors.append(exc)

    start = time.perf_counter()
    pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return n / elapsed


class Counter:
    def __init__(self, start: int) -> None:
        self.value = start
        self.lock = threading.Lock()

    def next(self) -> int:
        with self.lock:
            self.value += 1
            return self.value


def phases(n: int, counter: Counter) -> list[tuple[str, Op, int, int]]:
    """(name, operation, count, client threads) of one round."""
    searches = max(10, n // 4)
    return [
        ("create, sequential", lambda s, c, i: s.create(c, counter.next()), n, 1),
        (f"create, {THREADS} threads", lambda s, c, i: s.create(c, counter.next()), n, THREADS),
        ("read by id", lambda s, c, i: s.read(c, s.ids[(i * 7919) % len(s.ids)]), n, 1),
        ("search: page of 50, status+priority", lambda s, c, i: s.search_filter(c), searches, 1),
        (f"search: full text '{NEEDLE}'", lambda s, c, i: s.search_text(c), searches, 1),
        ("update status+priority", lambda s, c, i: s.update(c, s.ids[(i * 104729) % len(s.ids)], i), n, 1),
    ]


def seed(server: Server, count: int) -> None:
    counter = iter(range(count))
    lock = threading.Lock()

    def op(s: Server, c: Client, _i: int) -> None:
        with lock:
            i = next(counter)
        s.create(c, i)

    rate = timed(server, op, count, THREADS)
    print(f"  {server.name}: seeded {count} tickets ({rate:.0f}/s, {THREADS} threads)", flush=True)


def check_searches(server: Server) -> None:
    c = server.client()
    page, text = server.search_filter(c), server.search_text(c)
    print(f"  {server.name}: filtered search answers {page} tickets, full text {text}", flush=True)
    if page != 50 or text == 0:
        raise RuntimeError(f"{server.name}: the searches do not find what they should (50, >0)")


# --- RT installation -----------------------------------------------------------------------------


def install_rt() -> str | None:
    """apt-get install RT and Starlet; None when done, else why not."""
    if os.geteuid() != 0:
        return "installing RT needs root (apt-get)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # RT's own database set-up is this script's: no dbconfig-common questions or databases.
    subprocess.run(
        ["debconf-set-selections"],
        input=b"request-tracker5 request-tracker5/dbconfig-install boolean false\n",
        check=False,
    )
    done = subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", *RT_PACKAGES],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        packages = " ".join(RT_PACKAGES)
        return f"apt-get install {packages} failed ({done.returncode}): {done.stderr.strip()[-500:]}"
    return None


def rt_missing() -> str | None:
    for path in (RT_SERVER, RT_SETUP):
        if not path.exists():
            return f"{path} not found: Request Tracker 5 is not installed (run with --install-rt)"
    if subprocess.run(["perl", "-MStarlet", "-e1"], capture_output=True).returncode != 0:
        return "Starlet (Debian package starlet) is not installed (run with --install-rt)"
    return None


# --- Main ----------------------------------------------------------------------------------------


def measure(args: argparse.Namespace, database: str, rt_reason: str | None) -> dict[str, Any]:
    work = Path(args.workdir) / database
    if database == "sqlite":
        tikting_url = f"sqlite:///{work / 'tikting.sqlite3'}"
    else:
        tikting_url = f"postgres://postgres@127.0.0.1:5432/{args.pg_prefix}_tikting"
    servers: list[Server] = []
    if rt_reason is None:
        servers.append(RequestTracker(args.rt_port, work / "rt", database, f"{args.pg_prefix}_rt"))
    servers.append(Tikting(args.tikting_port, work / "tikting", tikting_url))
    print(f"\n== {database} ==", flush=True)
    results: dict[str, dict[str, list[float]]] = {s.name: {} for s in servers}
    memory: dict[str, Memory] = {}
    try:
        for server in servers:
            t0 = time.perf_counter()
            server.start()  # type: ignore[attr-defined]
            print(f"  {server.name}: started in {time.perf_counter() - t0:.1f} s", flush=True)
            seed(server, args.seed)
            if isinstance(server, RequestTracker):
                server.index()
            check_searches(server)
        counter = Counter(args.seed + 1_000_000)
        for rnd in range(args.rounds + 1):  # round 0 warms both up and is not counted
            for server in servers:
                for name, op, n, threads in phases(args.n if rnd else max(8, args.n // 10), counter):
                    rate = timed(server, op, n, threads)
                    if rnd:
                        results[server.name].setdefault(name, []).append(rate)
                if rnd:
                    print(f"  round {rnd} {server.name}: done", flush=True)
        for server in servers:
            memory[server.name] = server.memory()
    finally:
        for server in servers:
            server.stop()
    report(database, results, memory, args)
    return {"database": database, "results": results, "memory": {k: vars(v) for k, v in memory.items()}}


def report(
    database: str,
    results: dict[str, dict[str, list[float]]],
    memory: dict[str, Memory],
    args: argparse.Namespace,
) -> None:
    rt, tk = results.get("RT"), results["tikting"]
    print(
        f"\n{database}: operations per second, median of {args.rounds} interleaved rounds "
        "(target: tikting ≥ 10× RT)"
    )
    print(f"  {'phase':<40} {'RT':>8} {'tikting':>9} {'ratio':>7}")
    for name, rates in tk.items():
        ours = statistics.median(rates)
        if rt:
            theirs = statistics.median(rt[name])
            mark = "ok" if ours >= 10 * theirs else "below 10×"
            print(f"  {name:<40} {theirs:8.1f} {ours:9.1f} {ours / theirs:6.1f}× {mark}")
        else:
            print(f"  {name:<40} {'—':>8} {ours:9.1f}")
    print("  memory after the runs (MiB; workers summed; target: tikting ≤ half of RT's RSS):")
    for name, m in memory.items():
        print(
            f"  {name:<10} {m.workers} workers: RSS {m.rss_mib:6.1f}, PSS {m.pss_mib:6.1f}; "
            f"master RSS {m.master_rss_mib:5.1f}"
        )
    if "RT" in memory:
        ratio = memory["tikting"].rss_mib / memory["RT"].rss_mib
        print(f"  tikting / RT worker RSS: {ratio:.2f} ({'ok' if ratio <= 0.5 else 'above half'})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--install-rt", action="store_true", help="apt-get install Request Tracker 5 and Starlet first"
    )
    parser.add_argument("--skip-rt", action="store_true", help="measure tikting alone")
    parser.add_argument("--database", action="append", choices=["sqlite", "postgresql"], help="default: both")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--n", type=int, default=100, help="operations per phase and round (searches: a quarter)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=400,
        help="tickets created before the rounds (8 status and priority pairs: 50 of each)",
    )
    parser.add_argument("--workdir", default="/tmp/rt_vs_tikting")  # noqa: S108 - a benchmark's scratch
    parser.add_argument(
        "--pg-prefix", default="tk_bench_rt", help="PostgreSQL databases PREFIX_rt, PREFIX_tikting"
    )
    parser.add_argument("--rt-port", type=int, default=8732)
    parser.add_argument("--tikting-port", type=int, default=8731)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    reason: str | None = "skipped (--skip-rt)" if args.skip_rt else None
    if reason is None and args.install_rt:
        reason = install_rt()
    if reason is None:
        reason = rt_missing()
    if reason:
        print(f"Request Tracker: not measured: {reason}. Measuring tikting alone.", flush=True)
    if not (ROOT / ".venv/bin/gunicorn").exists():
        sys.exit("gunicorn is not in .venv: run `make install` (it is in requirements.txt)")
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    shutil.rmtree(Path(args.workdir) / "sqlite", ignore_errors=True)
    out = [measure(args, database, reason) for database in args.database or ["sqlite", "postgresql"]]
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
