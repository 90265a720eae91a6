"""pylibmc (libmemcached, text protocol) against a running server: python3 pylibmc_calls.py PORT.

Runs pylibmc's common calls and checks every answer; each failed check is printed on its own line
and the exit status is 1. Prints "ok <n> checks" when all pass. Run by test/e2e-pylibmc.test.ts.
"""
import sys

import pylibmc

PORT = int(sys.argv[1])
KEYS = 5000

failures = []
checks = 0


def check(name, got, want):
    global checks
    checks += 1
    if got != want:
        failures.append(f"{name}: got {got!r:.200}, want {want!r:.200}")


def raises(name, error, call):
    global checks
    checks += 1
    try:
        result = call()
    except error:
        return
    except Exception as e:
        failures.append(f"{name}: raised {type(e).__name__}: {e}, want {error.__name__}")
        return
    failures.append(f"{name}: returned {result!r:.200}, want {error.__name__}")


def value(i):
    """Binary values of varied length, CR, LF and NUL included."""
    return bytes((i * 7 + j) % 256 for j in range(i % 300)) + b"\r\n\0" + str(i).encode()


def items(client):
    [(_server, stats)] = client.get_stats()
    return int(stats["curr_items"])


c = pylibmc.Client([f"127.0.0.1:{PORT}"], binary=False, behaviors={"cas": True, "tcp_nodelay": True, "connect_timeout": 5000, "_poll_timeout": 5000})

# set_multi / get_multi with thousands of keys
data = {f"plm:{i}": value(i) for i in range(KEYS)}
check("set_multi of 5000 keys fails none", c.set_multi(data), [])
check("get_multi of 5000 keys returns every value", c.get_multi(list(data)), data)
check("get_multi with missing keys returns only the stored ones", c.get_multi(["plm:1", "plm:none", "plm:2"]), {"plm:1": data["plm:1"], "plm:2": data["plm:2"]})
check("get of a missing key", c.get("plm:none"), None)

# cas through gets
c.set("plm:cas", b"first")
v, unique = c.gets("plm:cas")
check("gets value", v, b"first")
check("cas with the current unique stores", c.cas("plm:cas", b"second", unique), True)
check("cas with a stale unique is refused", c.cas("plm:cas", b"third", unique), False)
check("value after cas", c.get("plm:cas"), b"second")

# incr / decr
c.set("plm:n", b"41")
check("incr", c.incr("plm:n", 1), 42)
check("incr by a large delta", c.incr("plm:n", 1000000), 1000042)
check("decr stops at 0", c.decr("plm:n", 2000000), 0)
raises("incr of a missing key", pylibmc.NotFound, lambda: c.incr("plm:none", 1))

# append / prepend
c.set("plm:ap", b"mid")
check("append", c.append("plm:ap", b">end"), True)
check("prepend", c.prepend("plm:ap", b"start<"), True)
check("value after append and prepend", c.get("plm:ap"), b"start<mid>end")
check("append to a missing key", c.append("plm:none", b"x"), False)

# touch
check("touch of a stored key", c.touch("plm:ap", 100), True)
check("touch of a missing key", c.touch("plm:none", 100), False)

# add / replace
check("add of a stored key is refused", c.add("plm:ap", b"x"), False)
check("add of a new key", c.add("plm:added", b"a"), True)
check("replace of a stored key", c.replace("plm:added", b"b"), True)
check("replace of a missing key is refused", c.replace("plm:none", b"x"), False)
check("value after replace", c.get("plm:added"), b"b")

# delete_multi
doomed = [f"plm:{i}" for i in range(100)]
check("delete_multi of stored keys", c.delete_multi(doomed), True)
check("get_multi after delete_multi", c.get_multi(doomed), {})
check("delete of a missing key", c.delete("plm:none"), False)

# values at and over the item size limit (-I 1m: header + key + value)
near = bytes(range(256)) * 4000  # 1,024,000 bytes
check("a value just under the item size limit", c.set("plm:big", near), True)
check("reading it back", c.get("plm:big"), near)
raises("a value over the item size limit", pylibmc.TooBig, lambda: c.set("plm:big", b"x" * (2 * 1024 * 1024)))
check("the refused set dropped the old value", c.get("plm:big"), None)
check("the connection still serves", c.get("plm:added"), b"b")

# get_stats
stats = c.get_stats()
check("get_stats has one server", len(stats), 1)
check("get_stats counts the items", items(c), KEYS - len(doomed) + 4)

# flush_all on a populated cache, then reads that miss
check("flush_all", c.flush_all(), True)
check("no items after flush_all", items(c), 0)
check("get_multi after flush_all", c.get_multi(list(data)), {})
check("get after flush_all", c.get("plm:cas"), None)
check("gets after flush_all", c.gets("plm:ap"), (None, None))
check("the cache is usable after flush_all", c.set("plm:after", b"v") and c.get("plm:after"), b"v")

if failures:
    print(f"{len(failures)} of {checks} checks failed:")
    for f in failures:
        print(f"  {f}")
    sys.exit(1)
print(f"ok {checks} checks")
