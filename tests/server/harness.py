#!/usr/bin/python3
"""Starts a RESP server (corobtree-server, or Debian's redis-server for checking
the tests themselves) on a free port in a temporary directory, for the
real-client tests in tests/server/.

The server's binary is the tests' one parameter (--server PATH). A binary named
redis-server* is started with the Redis equivalents of corobtree-server's options
(--durability sync = appendonly yes + appendfsync always; --max-bulk-bytes N =
proto-max-bulk-len N), so every test here also runs against the real Redis.

Also a command-line wrapper for the shell tests:
  harness.py --server PATH [--threads N] [--durability sync|relaxed] -- CMD ARGS...
runs CMD with REDIS_HOST, REDIS_PORT and SERVER_PID in its environment (the
server relaxed unless told: the shell tests check the protocol; the kill loop
checks durability).
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HOST = "127.0.0.1"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def is_redis(binary):
    return os.path.basename(binary).startswith("redis-server")


def rss_kib(pid, field="VmRSS"):
    """VmRSS (or VmHWM) of a process in KiB, from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def sanitized(pid):
    """Whether the process runs with AddressSanitizer (its quarantine holds freed
    memory: RSS bounds need a wider margin)."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            return "libasan" in f.read()
    except OSError:
        return False


class Server:
    """One server process on a database directory that outlives restarts.

    start()/kill()/terminate() may be called repeatedly: each start() uses the
    same database (corobtree: DIR/db; redis: DIR as its --dir) and a port,
    kept across restarts while it is still free."""

    def __init__(self, binary, workdir=None, threads=2, durability="sync", pool_mb=None,
                 max_bulk_bytes=None, client_timeout=None, extra=()):
        self.binary = binary
        self.own_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="corobtree-server-test-")
        self.threads = threads
        self.durability = durability
        self.pool_mb = pool_mb
        self.max_bulk_bytes = max_bulk_bytes
        self.client_timeout = client_timeout
        self.extra = list(extra)
        self.port = None
        self.proc = None
        self.log_path = os.path.join(self.dir, "server.log")

    def command(self):
        if is_redis(self.binary):
            cmd = [self.binary, "--port", str(self.port), "--bind", HOST, "--daemonize", "no",
                   "--save", "", "--dir", self.dir, "--appendonly", "yes",
                   "--appendfsync", "always" if self.durability == "sync" else "everysec"]
            if self.max_bulk_bytes is not None:
                cmd += ["--proto-max-bulk-len", str(self.max_bulk_bytes)]
            if self.client_timeout is not None:
                cmd += ["--timeout", str(self.client_timeout)]
            return cmd + self.extra
        cmd = [self.binary, "--db", os.path.join(self.dir, "db"), "--port", str(self.port),
               "--bind", HOST, "--threads", str(self.threads), "--durability", self.durability]
        if self.pool_mb is not None:
            cmd += ["--pool-mb", str(self.pool_mb)]
        if self.max_bulk_bytes is not None:
            cmd += ["--max-bulk-bytes", str(self.max_bulk_bytes)]
        if self.client_timeout is not None:
            cmd += ["--client-timeout", str(self.client_timeout)]
        return cmd + self.extra

    def start(self, timeout=30.0):
        assert self.proc is None
        for attempt in range(5):
            if self.port is None or attempt > 0:
                self.port = free_port()
            log = open(self.log_path, "ab")
            # stdout too goes to the log: a pipe nobody drains would block the server.
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL)
            log.close()
            if self._wait_ready(timeout):
                return self
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        raise RuntimeError(f"{self.binary} did not start; log:\n{self.log()}")

    def _wait_ready(self, timeout):
        # corobtree-server prints "corobtree-server ready on ADDR:PORT" once it
        # listens, redis-server its own banner: for both, ready = PING answers.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection((HOST, self.port), timeout=1) as s:
                    s.sendall(b"*1\r\n$4\r\nPING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    @property
    def pid(self):
        return self.proc.pid

    def rss_kib(self, field="VmRSS"):
        return rss_kib(self.proc.pid, field)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL, then reap."""
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def terminate(self, timeout=60.0):
        """SIGTERM; returns the exit status (None when it had to be killed)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        self.proc = None
        return rc

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-4000:]
        except OSError:
            return ""

    def close(self):
        if self.proc is not None:
            self.kill()
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def client(self, **kw):
        import redis  # python3-redis, Debian's /usr/bin/python3 only
        return redis.Redis(host=HOST, port=self.port, socket_timeout=kw.pop("socket_timeout", 30), **kw)


def arg_parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--server", required=True, help="corobtree-server (or redis-server) binary")
    p.add_argument("--threads", type=int, default=2)
    return p


class Checks:
    """Counts failed checks; a test exits 1 when any failed."""

    def __init__(self):
        self.failed = 0
        self.passed = 0

    def check(self, cond, what):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAILED: {what}", flush=True)
        return cond

    def finish(self, name):
        print(f"{name}: {self.passed} checks passed, {self.failed} failed", flush=True)
        sys.exit(1 if self.failed else 0)


def main():
    argv = sys.argv[1:]
    if "--" not in argv:
        print("usage: harness.py --server PATH [--threads N] [--durability D] -- CMD ARGS...", file=sys.stderr)
        return 2
    cut = argv.index("--")
    p = arg_parser("run CMD against a server")
    p.add_argument("--durability", default="relaxed", choices=("sync", "relaxed"))
    args = p.parse_args(argv[:cut])
    with Server(args.server, threads=args.threads, durability=args.durability).start() as srv:
        env = dict(os.environ, REDIS_HOST=HOST, REDIS_PORT=str(srv.port), SERVER_PID=str(srv.pid),
                   SERVER_DIR=srv.dir)
        rc = subprocess.call(argv[cut + 1:], env=env)
        if rc == 0 and not srv.alive():
            print("the server died during the test", file=sys.stderr)
            rc = 1
        if rc != 0:
            print("--- server log (tail)\n" + srv.log(), file=sys.stderr)
        return rc


if __name__ == "__main__":
    sys.exit(main())
