import time, pytest
from tests.integration.cluster import Proxy, RedisServer, start_hosts, stopped_all
from tests.integration.test_cluster import on, LEASE

@pytest.mark.parametrize("f", [1.0, 1.1, 1.2, 1.3, 1.4])
def test_explore(f):
    redis = RedisServer()
    proxy = Proxy(redis.port)
    hosts = start_hosts([redis.url, redis.url, proxy.url], workers=1, lease=LEASE)
    try:
        a_host, b_host, c_host = hosts
        alice, bob, island = on(a_host, "alice"), on(b_host, "bob"), on(c_host, "island")
        for c in (alice, bob, island):
            c.send("JOIN #p"); c.expect("366")
        for h in hosts:
            h.wait_for_log("judging other hosts' leases", timeout=10)
        t0 = time.monotonic()
        proxy.cut()
        time.sleep(LEASE * f)
        proxy.restore()
        t1 = time.monotonic()
        time.sleep(LEASE * 3)
        res = {}
        for c in (alice, bob, island):
            try:
                c.sync()
            except AssertionError:
                pass
            res[c.nick] = (len(c.since("QUIT")), c.closed, [m.params[-1] for m in c.since("ERROR")])
        if not island.closed:
            island.send("PRIVMSG #p :here")
            try:
                alice.expect("PRIVMSG", timeout=3); res["deliv"] = True
            except AssertionError:
                res["deliv"] = False
        print("\nRESULT", f, round(t1 - t0, 2), res)
        for h in hosts:
            import re
            h.wait_for_log("zzzz-nothing", timeout=0.1) if False else None
    finally:
        stopped_all(hosts)
        for h in hosts:
            lines = [l for l in h.stderr.splitlines() if "cluster:" in l and ("lapse" in l or "gone" in l or "rejoin" in l)]
            print(h.host, lines)
        proxy.close()
        redis.close()
