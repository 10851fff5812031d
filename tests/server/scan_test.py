#!/usr/bin/python3
"""SCAN with no concurrent writes returns every key exactly once: python3-redis
scan_iter with and without MATCH and COUNT, raw SCAN cursor loops, and Debian's
redis-cli --scan (with --pattern), over printable and binary keys."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def scan_all(r, **kw):
    """The keys of a full SCAN loop by hand (cursor until 0), duplicates kept."""
    keys, cursor, rounds = [], 0, 0
    while True:
        cursor, batch = r.scan(cursor, **kw)
        keys += batch
        rounds += 1
        if cursor == 0 or rounds > 100000:
            return keys, rounds


def main():
    args = harness.arg_parser(__doc__).parse_args()
    c = harness.Checks()
    with harness.Server(args.server, threads=args.threads, durability="relaxed").start() as srv:
        r = srv.client()
        text = {f"user:{i}".encode() for i in range(3000)} | {f"item:{i}:x".encode() for i in range(1500)}
        binary = {bytes([i, 0, (i * 7) % 256, 13, 10]) for i in range(256)} | {b"", b"\x00", b"*?[]\\"}
        everything = text | binary
        pipe = r.pipeline(transaction=False)
        for k in everything:
            pipe.set(k, k[::-1])
        c.check(all(pipe.execute()), "every SET acknowledged")
        c.check(r.dbsize() == len(everything), f"DBSIZE {r.dbsize()} == {len(everything)}")

        for kw in ({}, {"count": 1}, {"count": 7}, {"count": 1000}, {"count": 100000}):
            got = list(r.scan_iter(**kw))
            c.check(len(got) == len(set(got)), f"scan_iter {kw}: no key twice ({len(got) - len(set(got))} dups)")
            c.check(set(got) == everything, f"scan_iter {kw}: every key ({len(everything - set(got))} missing)")
            keys, rounds = scan_all(r, **kw)
            c.check(sorted(keys) == sorted(everything), f"SCAN loop {kw}: every key exactly once")
            if kw.get("count") == 1:
                c.check(rounds > 100, f"COUNT 1 takes many rounds ({rounds})")

        for pattern, want in ((b"user:*", {k for k in text if k.startswith(b"user:")}),
                              (b"item:1?:x", {f"item:{i}:x".encode() for i in range(10, 20)}),
                              (b"user:2[0-4]9", {f"user:2{d}9".encode() for d in range(5)}),
                              (b"*\\*\\?\\[\\]\\\\", {b"*?[]\\"}),
                              (b"nothing:*", set())):
            for kw in ({}, {"count": 10}, {"count": 5000}):
                got = list(r.scan_iter(match=pattern, **kw))
                c.check(len(got) == len(set(got)) and set(got) == want,
                        f"MATCH {pattern!r} {kw}: {len(got)} keys, want {len(want)}")

        # redis-cli --scan prints one key a line: the printable keys only.
        base = ["redis-cli", "-h", harness.HOST, "-p", str(srv.port), "--scan"]
        for extra, want in (([], None), (["--pattern", "item:*"], {k for k in text if k.startswith(b"item:")}),
                            (["--pattern", "user:1*", "-i", "0"], {k for k in text if k.startswith(b"user:1")})):
            out = subprocess.run(base + extra, check=True, stdout=subprocess.PIPE).stdout
            lines = [k for k in out.split(b"\n")[:-1] if k in text or want is not None]
            printable = [k for k in lines if k in text]
            expect = text if want is None else want
            c.check(len(printable) == len(set(printable)) and set(printable) == expect,
                    f"redis-cli --scan {extra}: {len(printable)} printable keys, want {len(expect)}")
        c.check(srv.alive(), "server alive")
    c.finish("scan_test")


if __name__ == "__main__":
    main()
