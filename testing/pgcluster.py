"""A throwaway PostgreSQL cluster for the bench's Kinto (`bench.py --server pg`), from Debian's
packages (`apt-get install postgresql`; the binaries are under /usr/lib/postgresql/<major>/bin).

`PgCluster(parent).start()` runs initdb into a fresh temporary directory under `parent`, starts
`postgres` on a free loopback port (its Unix socket in that directory too) with pg_stat_statements
loaded, and creates the `kinto` database; `stop()` shuts the server down (fast mode) and removes
the directory. initdb refuses to run as root: when this process is root, the server's files belong
to the `postgres` system user the Debian package creates, and its programs run as that user.

Nothing here is used by `make test`.
"""

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time


def find_bindir():
    """The newest /usr/lib/postgresql/<major>/bin holding initdb and postgres."""
    candidates = [d for d in glob.glob("/usr/lib/postgresql/*/bin")
                  if os.path.exists(os.path.join(d, "initdb")) and os.path.exists(os.path.join(d, "postgres"))]
    if not candidates:
        raise RuntimeError("PostgreSQL is not installed: no /usr/lib/postgresql/*/bin/initdb "
                           "(`apt-get install -y postgresql`; `make bench` does it)")
    return max(candidates, key=lambda d: int(d.split("/")[-2]))


def cpu_seconds(pid, with_reaped_children=True):
    """utime + stime of a process (plus its reaped children's, the kernel's cutime + cstime)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if with_reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def children(pid):
    """The pids of the live direct children of `pid`."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            kids.append(int(entry))
    return kids


def tree_pids(pid):
    """A process and its live descendants."""
    pids, stack = [], [pid]
    while stack:
        p = stack.pop()
        pids.append(p)
        stack.extend(children(p))
    return pids


def tree_cpu_seconds(pid):
    """CPU seconds of a process and all its descendants, live or reaped: a multi-worker server
    (granian and its workers, the postmaster and its backends) counted as one."""
    total = 0.0
    for p in tree_pids(pid):
        try:
            total += cpu_seconds(p)
        except (OSError, ValueError, IndexError):
            continue
    return total


def pin_tree(pid, cpus):
    """Run every thread of a process and of its live descendants on `cpus` only (processes they
    start later inherit it)."""
    for p in tree_pids(pid):
        try:
            threads = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in threads:
            try:
                os.sched_setaffinity(int(tid), cpus)
            except OSError:
                continue


class PgCluster:
    def __init__(self, parent, log=print):
        self.parent = parent
        self.log = log
        self.dir = None
        self.proc = None
        self.port = None

    def _as_owner(self):
        """preexec_fn dropping root to the `postgres` user (initdb and postgres refuse root)."""
        if os.geteuid() != 0:
            return None
        user = pwd.getpwnam("postgres")

        def drop():
            os.setgid(user.pw_gid)
            os.setgroups([])
            os.setuid(user.pw_uid)

        return drop

    def _run(self, argv):
        result = subprocess.run(argv, preexec_fn=self._as_owner(), capture_output=True, text=True,
                                cwd=self.dir)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr[-2000:]}")
        return result.stdout

    def start(self, port, max_connections=200):
        bindir = find_bindir()
        os.makedirs(self.parent, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="pg-", dir=self.parent)
        self.port = port
        data = os.path.join(self.dir, "data")
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            # The postgres user must be able to reach the directory.
            path = self.parent
            while path not in ("/", ""):
                mode = os.stat(path).st_mode
                if not mode & 0o001:
                    os.chmod(path, mode | 0o001)
                path = os.path.dirname(path)
        self._run([os.path.join(bindir, "initdb"), "-D", data, "-U", "kinto", "--auth=trust",
                   "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
        self.logfile = os.path.join(self.dir, "postgres.log")
        log = open(self.logfile, "wb")
        self.proc = subprocess.Popen(
            [os.path.join(bindir, "postgres"), "-D", data, "-p", str(port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.dir}",
             "-c", f"max_connections={max_connections}",
             "-c", "shared_preload_libraries=pg_stat_statements",
             "-c", "pg_stat_statements.track=all",
             "-c", "track_io_timing=on",
             "-c", "log_lock_waits=on"],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=self._as_owner(),
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited {self.proc.returncode}: {self.tail()}")
            ready = subprocess.run([os.path.join(bindir, "pg_isready"), "-q", "-h", "127.0.0.1",
                                    "-p", str(port)])
            if ready.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not start within 30 s: {self.tail()}")
            time.sleep(0.2)
        self.psql = os.path.join(bindir, "psql")
        self.sql("CREATE DATABASE kinto", db="postgres")
        self.sql("CREATE EXTENSION pg_stat_statements")
        self.log(f"PostgreSQL {os.path.basename(os.path.dirname(bindir))} on 127.0.0.1:{port}, "
                 f"cluster in {self.dir}")
        return self

    @property
    def url(self):
        return f"postgresql://kinto@127.0.0.1:{self.port}/kinto"

    @property
    def pid(self):
        return self.proc.pid

    def sql(self, query, db="kinto"):
        """Run SQL through psql; returns its unaligned, tab-separated output."""
        result = subprocess.run(
            [self.psql, "-X", "-h", "127.0.0.1", "-p", str(self.port), "-U", "kinto", "-d", db,
             "-At", "-F", "\t", "-c", query], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"psql {query!r}: {result.stderr[-1000:]}")
        return result.stdout

    def cpu_seconds(self):
        """CPU seconds of the postmaster and its backends so far (live and exited)."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        return tree_cpu_seconds(self.proc.pid)

    def tail(self):
        try:
            with open(self.logfile, "rb") as f:
                return f.read().decode(errors="replace")[-3000:]
        except (OSError, AttributeError):
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGINT)  # fast shutdown
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        self.proc = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
