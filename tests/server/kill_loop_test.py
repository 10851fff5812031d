#!/usr/bin/python3
"""The kill loop: python3-redis writers record every acknowledged SET, INCR,
MSET and DEL while the server (--durability sync) is killed with SIGKILL at
random moments and restarted on the same database. After each restart every
acknowledged write is there: a key holds its last acknowledged value or the
value of the one write that was in flight (never anything else), an MSET in
flight shows entirely or not at all, an INCR counter is its last acknowledged
value or one more. Then a SIGTERM: exit status 0 and every write intact.
Seed: --seed N (printed)."""
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

KEYS_PER_WRITER = 64
MSET_KEYS = 3
ABSENT = None


class Writer(threading.Thread):
    """One connection writing its own keys until the connection fails. `acked`
    is the state the server acknowledged; `pending` the one unacknowledged op
    (a dict of key -> value it would set, or ('incr', key))."""

    def __init__(self, wid, rng, acked):
        super().__init__(daemon=True)
        self.wid = wid
        self.rng = rng
        self.acked = acked
        self.pending = None
        self.ops = 0
        self.unexpected = None
        self.port = None

    def key(self, j):
        return f"w{self.wid}:k{j}".encode()

    def run(self):
        import redis
        r = redis.Redis(host=harness.HOST, port=self.port, socket_timeout=20)
        try:
            while True:
                self.step(r)
                self.ops += 1
        except (redis.ConnectionError, redis.TimeoutError, ConnectionError, OSError):
            return  # the server was killed; `pending` may or may not have happened
        except Exception as e:  # noqa: BLE001 -- reported by the main thread
            self.unexpected = repr(e)

    def step(self, r):
        op = self.rng.random()
        tag = f"{self.wid}.{self.ops}.{self.rng.getrandbits(32)}"
        if op < 0.55:
            k = self.key(self.rng.randrange(KEYS_PER_WRITER))
            v = (tag.encode() + b"\x00\r\n") * self.rng.choice((1, 10, 300))
            self.pending = {k: v}
            ok = r.set(k, v)
            assert ok is True, ok
        elif op < 0.75:
            k = f"w{self.wid}:ctr{self.rng.randrange(2)}".encode()
            self.pending = ("incr", k)
            n = r.incr(k)
            assert n == self.acked.get(k, 0) + 1, (k, n, self.acked.get(k))
            self.acked[k] = n
            self.pending = None
            return
        elif op < 0.9:
            v = tag.encode()
            group = {f"w{self.wid}:m{i}".encode(): v + bytes([i]) for i in range(MSET_KEYS)}
            self.pending = group
            assert r.mset(group) is True
        else:
            k = self.key(self.rng.randrange(KEYS_PER_WRITER))
            self.pending = {k: ABSENT}
            r.delete(k)
        self.acked.update(self.pending)
        self.pending = None


def verify(c, r, writers, label, exact=False):
    ok = True
    for w in writers:
        keys = list(w.acked.keys())
        pend = w.pending
        if isinstance(pend, dict):
            keys += [k for k in pend if k not in w.acked]
        if isinstance(pend, tuple) and pend[1] not in w.acked:
            keys.append(pend[1])
        if not keys:
            continue
        values = dict(zip(keys, r.mget(keys)))
        for k, got in values.items():
            if k.split(b":")[1].startswith(b"ctr"):
                n = 0 if got is None else int(got)
                last = w.acked.get(k, 0)
                allowed = {last} if exact or pend != ("incr", k) else {last, last + 1}
                ok &= c.check(n in allowed, f"{label}: counter {k!r} = {n}, acknowledged {last}")
                continue
            allowed = {w.acked.get(k, ABSENT)}
            if isinstance(pend, dict) and k in pend and not exact:
                allowed.add(pend[k])
            ok &= c.check(got in allowed, f"{label}: {k!r} = {got!r:.60}, acknowledged "
                          f"{w.acked.get(k, ABSENT)!r:.60}")
        if isinstance(pend, dict) and len(pend) == MSET_KEYS:
            applied = [values[k] == v for k, v in pend.items()]
            ok &= c.check(all(applied) or not any(applied), f"{label}: MSET in flight partly applied")
    return ok


def main():
    p = harness.arg_parser(__doc__)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--writers", type=int, default=4)
    p.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(4), "little"))
    args = p.parse_args()
    print(f"kill_loop_test: seed {args.seed}", flush=True)
    rng = random.Random(args.seed)
    c = harness.Checks()
    states = [{} for _ in range(args.writers)]
    with harness.Server(args.server, threads=args.threads, durability="sync") as srv:
        writers = []
        total_ops = 0
        for rnd in range(args.rounds + 1):
            srv.start()
            r = srv.client()
            if not verify(c, r, writers, f"after kill {rnd}"):
                print(srv.log())
                break
            # The state seen now is the truth: a pending write either happened or not.
            for w in writers:
                if isinstance(w.pending, dict):
                    for k in w.pending:
                        w.acked[k] = r.get(k)
                elif isinstance(w.pending, tuple):
                    got = r.get(w.pending[1])
                    w.acked[w.pending[1]] = 0 if got is None else int(got)
            r.close()
            if rnd == args.rounds:
                break
            writers = [Writer(i, random.Random(rng.getrandbits(64)), states[i]) for i in range(args.writers)]
            for w in writers:
                w.port = srv.port
                w.start()
            time.sleep(rng.uniform(0.2, 1.8))
            srv.kill()
            for w in writers:
                w.join(30)
                c.check(not w.is_alive(), f"writer {w.wid} stopped after the kill")
                c.check(w.unexpected is None, f"writer {w.wid}: {w.unexpected}")
                total_ops += w.ops
        print(f"kill_loop_test: {args.rounds} SIGKILLs, {total_ops} acknowledged writes", flush=True)
        c.check(total_ops >= args.rounds, "writes were acknowledged between the kills")

        # SIGTERM: clean exit, every write there (nothing in flight now).
        r = srv.client()
        for w in writers:
            w.pending = None
            for j in range(8):
                k = w.key(j)
                w.acked[k] = f"final {j}".encode()
                c.check(r.set(k, w.acked[k]) is True, "SET before SIGTERM")
        r.close()
        rc = srv.terminate()
        c.check(rc == 0, f"SIGTERM: exit status {rc}")
        srv.start()
        verify(c, srv.client(), writers, "after SIGTERM", exact=True)
        c.check(srv.terminate() == 0, "second SIGTERM: exit status 0")
    c.finish("kill_loop_test")


if __name__ == "__main__":
    main()
