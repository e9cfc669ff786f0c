"""The multi-core stress run: start the server (or drive --target), load it from several
generator processes, show live progress, then check that nothing was lost, doubled or
reordered, that nobody was disconnected and that no server process restarted.

Usage: scripts/soak.sh [--workers N] [--clients C] [--channels M] [--senders S] [--rate R]
                       [--duration D] [--target HOST:PORT] [--procs P] [--quick] [--out DIR]
                       [--websocket-share F] [--cluster H] [--idle-load KIND[:SHARE]] [--no-history]

With --cluster H it starts a redis-server (AOF on, in a temporary directory) and H servers on
127.0.0.2, .3, ... sharing it (--workers each), spreads the clients evenly over them (each
channel's members dealt over the hosts in turn), and reports the latency of deliveries from a sender on another host, and what
Redis itself used.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ledger import verify  # noqa: E402
from loadgen import BUCKET_MS, BUCKETS, Plan, generator_main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
QUICK = {"workers": 2, "clients": 200, "channels": 10, "senders": 10, "rate": 500.0, "duration": 20.0}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/soak.sh", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--channels", type=int, default=10)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--rate", type=float, default=1000.0, help="messages per second, all senders together")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of sending")
    parser.add_argument("--target", help="HOST:PORT of a running IRC server to drive instead of starting one")
    parser.add_argument("--procs", type=int,
                        help="generator processes. Default: half the cores (the server gets the other half; more "
                             "generator processes than that only take turns with the server on the same cores), "
                             "or more when the clients need more descriptors than one process may open")
    parser.add_argument("--sample", type=int, default=0,
                        help="verify only this many members per channel line by line (latency, order), from a "
                             "generator process of their own (the probe); count the others' deliveries. 0 (the "
                             "default): verify everyone")
    parser.add_argument("--websocket-share", type=float, default=0.0, metavar="F",
                        help="this fraction of the clients (0 to 1) speak IRC over WebSocket to the server's "
                             "HTTP port, with the same exactly-once checks")
    parser.add_argument("--cluster", type=int, default=0, metavar="H",
                        help="H hosts of one cluster sharing one Redis (started here); 0: one server, no Redis")
    parser.add_argument("--quick", action="store_true", help="a short light run (CI): " + str(QUICK))
    parser.add_argument("--out", default=str(ROOT / "soak-results"), help="where results are written")
    parser.add_argument("--idle-load", metavar="KIND[:SHARE]",
                        help="beside the server, a SCHED_IDLE load of KIND cpu or memory at SHARE of a core "
                             "(default 0.26, the store's writer at row 2): scripts/idle_load.py")
    parser.add_argument("--no-history", dest="history", action="store_false",
                        help="start the server with history off (on by default, as the server's default; "
                             "its database goes to a temporary directory, removed after the run)")
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    if args.senders > args.clients:
        parser.error("--senders cannot exceed --clients")
    if not 0 <= args.websocket_share <= 1:
        parser.error("--websocket-share is a fraction from 0 to 1")
    if args.websocket_share and args.target:
        parser.error("--websocket-share needs the server the soak starts (it reads the HTTP port at start)")
    if args.idle_load and args.idle_load.partition(":")[0] not in ("cpu", "memory"):
        parser.error("--idle-load is cpu or memory, then optionally :SHARE")
    if args.cluster and (args.target or args.websocket_share):
        parser.error("--cluster starts its own servers, over TCP only")
    if args.procs is None:
        args.procs = default_procs(args.clients)
    return args


class Redis:
    """redis-server for --cluster, on a free loopback port with AOF on, in a directory of its own."""

    def __init__(self) -> None:
        import socket
        import redis
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.dir = tempfile.mkdtemp(prefix="hubchat-soak-redis-")
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
                                      self.dir, "--appendonly", "yes", "--save", "", "--logfile", "redis.log"],
                                     stdout=subprocess.DEVNULL)
        self.client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise SystemExit("soak: redis-server did not start (apt-get install redis-server)")
                time.sleep(0.05)
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def commands(self) -> int:
        return int(self.client.info("stats")["total_commands_processed"])

    def memory_mb(self) -> float:
        return round(self.client.info("memory")["used_memory"] / 2 ** 20, 1)

    def close(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(15)
        shutil.rmtree(self.dir, ignore_errors=True)


def default_procs(clients: int) -> int:
    descriptors = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    per_proc = max(100, descriptors - 1000)  # room for the process's own files
    return max(1, (os.cpu_count() or 2) // 2, -(-clients // per_proc))


def machine_loop_ms(runs: int = 3) -> float:
    """The best of `runs` timings of one fixed pure-Python loop, taken before the run starts.

    Latency figures only compare across runs on a machine of one speed, and a virtual machine's
    speed drifts (on the project's machine this loop took 52-115 ms within one hour); printed
    beside the results, it tells a slow machine from a slow server."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        total = 0
        for i in range(2_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


def start_server(workers: int, data_dir: str | None, extra: tuple[str, ...] = ()):
    history = ["--data-dir", data_dir] if data_dir else ["--no-history"]
    proc = subprocess.Popen([sys.executable, "-m", "hub", "--workers", str(workers), "--port", "0", "--web-port", "0",
                             "--no-flood-control", "--log-level", "warning", *history, *extra], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "HUBCHAT_LIMITS_MAX_CLIENTS": "200000"})
    line = proc.stdout.readline()
    match = re.search(r"listening on (\S+):(\d+)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"soak: the server did not start: {line!r}")
    store = re.search(r"store (\d+)", line)
    web = re.search(r"web on \w+://\S+:(\d+)", line)
    return (proc, match.group(1), int(match.group(2)), int(store.group(1)) if store else None,
            int(web.group(1)) if web else 0)


def server_processes(supervisor_pid: int | None, store_pid: int | None = None) -> dict[int, str]:
    if supervisor_pid is None:
        return {}
    sup = psutil.Process(supervisor_pid)
    found = {supervisor_pid: "supervisor"}
    for child in sup.children():
        if child.pid == store_pid:
            found[child.pid] = "store"
            for writer in child.children():  # history/writer.py: the store's idle-priority writing jobs
                found[writer.pid] = "writer"
            continue
        try:
            listens = any(c.status == psutil.CONN_LISTEN for c in child.net_connections("tcp"))
        except psutil.NoSuchProcess:
            continue
        found[child.pid] = "worker" if listens else "hub"
    return found


def wait_for_writer(store_pid: int | None, within: float = 10.0) -> None:
    """The store starts its writer process as it starts (history/writer.py), maybe after the
    server says it listens: its CPU is the store's too, so the soak waits to see it."""
    deadline = time.monotonic() + within
    while store_pid is not None and time.monotonic() < deadline:
        try:
            if psutil.Process(store_pid).children():
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)


def percentile(histogram: dict[int, int], fraction: float) -> float | None:
    total = sum(histogram.values())
    if not total:
        return None
    running = 0
    for bucket in sorted(histogram):
        running += histogram[bucket]
        if running >= total * fraction:
            return round((bucket + 1) * BUCKET_MS, 1)
    return round(BUCKETS * BUCKET_MS, 1)


def cpu_and_memory(procs: dict[int, psutil.Process]) -> dict[int, tuple[float, float]]:
    result = {}
    for pid, p in procs.items():
        try:
            result[pid] = (p.cpu_percent(None), p.memory_info().rss / 2 ** 20)
        except psutil.NoSuchProcess:
            result[pid] = (0.0, 0.0)
    return result


def memory_by_pid(procs: dict[int, psutil.Process]) -> dict[int, float]:
    return {pid: rss for pid, (_, rss) in cpu_and_memory(procs).items()}


def cpu_seconds(procs: dict[int, psutil.Process]) -> dict[int, float]:
    result = {}
    for pid, p in procs.items():
        try:
            times = p.cpu_times()
            result[pid] = times.user + times.system
        except psutil.NoSuchProcess:
            result[pid] = 0.0
    return result


def main(argv=None) -> int:
    args = parse_args(argv)
    loop_ms = machine_loop_ms()  # before anything of the run is started: the machine is as idle as it gets
    server = store_pid = None
    web_port = 0
    data_dir = tempfile.mkdtemp(prefix="hubchat-soak-") if args.history and not (args.target or args.cluster) else None
    redis = None
    more: list[tuple] = []  # the other hosts of a cluster: (proc, host, port, store_pid, data_dir)
    if args.target:
        host, _, port = args.target.rpartition(":")
        port = int(port)
        supervisor_pid = None
    elif args.cluster:
        redis = Redis()
        for k in range(args.cluster):
            extra = ("--host", f"127.0.0.{k + 2}", "--no-web", "--cluster", redis.url, "--host-id", f"soak{k}")
            directory = tempfile.mkdtemp(prefix="hubchat-soak-") if args.history else None
            more.append((*start_server(args.workers, directory, extra)[:4], directory))
        server, host, port, store_pid, _ = more.pop(0)
        supervisor_pid = server.pid
    else:
        server, host, port, store_pid, web_port = start_server(args.workers, data_dir)
        supervisor_pid = server.pid
    for pid in (store_pid, *(other for _, _, _, other, _ in more)):
        wait_for_writer(pid)
    roles = server_processes(supervisor_pid, store_pid)
    for proc, _, _, other_store, _ in more:
        roles.update(server_processes(proc.pid, other_store))
    watched = {pid: psutil.Process(pid) for pid in roles}
    if redis is not None:
        roles[redis.proc.pid] = "redis"
        watched[redis.proc.pid] = psutil.Process(redis.proc.pid)
    targets = ((host, port), *((h, p) for _, h, p, _, _ in more)) if args.cluster else ()
    plan = Plan(host, port, args.clients, args.channels, args.senders, args.rate, args.duration, args.procs,
                drain=10.0, sample=args.sample, web_port=web_port, websocket_share=args.websocket_share,
                targets=targets)
    idle_by_pid = memory_by_pid(watched)
    idle_rss = sum(idle_by_pid.values())
    ctx = multiprocessing.get_context("fork")
    report, ready = ctx.Queue(), ctx.Queue()
    gos = [ctx.Queue() for _ in range(plan.total_procs)]
    gens = [ctx.Process(target=generator_main, args=(plan, i, report, ready, gos[i]), daemon=True)
            for i in range(plan.total_procs)]
    for g in gens:
        g.start()
    gen_procs = {g.pid: psutil.Process(g.pid) for g in gens}
    websockets = sum(plan.websocket(i) for i in range(plan.clients))
    print(f"soak: {plan.clients} clients" + (f" ({websockets} over WebSocket)" if websockets else "") +
          f" in {plan.channels} channels, {plan.senders} senders, "
          f"{plan.rate:g} msg/s for {plan.duration:g}s against {host}:{port}"
          + (f" ({args.workers} workers, history {'on' if args.history else 'off'})" if server else "")
          + (f", {args.cluster} hosts of one cluster ({', '.join(f'{h}:{p}' for h, p in targets)}) on one Redis"
             if args.cluster else "")
          + f"; machine: a fixed CPU loop takes {loop_ms:g} ms (lower is faster)", flush=True)
    problems: list[str] = []
    timeline = []
    results = {}
    idle_load = None
    if args.idle_load:
        kind, _, share = args.idle_load.partition(":")
        idle_load = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "idle_load.py"), "--kind", kind,
                                      "--share", share or "0.26", "--seconds", str(args.duration + 120)])
    try:
        connecting_since = time.monotonic()
        everyone = {**watched, **gen_procs}
        cpu_before = cpu_seconds(everyone)
        for _ in range(plan.total_procs):
            try:
                ready.get(timeout=300)
            except queue.Empty:
                raise SystemExit("soak: the clients did not all connect and join within 300 s")
        joined_in = time.monotonic() - connecting_since
        cpu_after = cpu_seconds(everyone)
        # Who was busy while clients registered: the one near 100% of a core is the limit.
        names = {pid: f"{roles.get(pid, 'generator')} {pid}" for pid in everyone}
        join_cpu = {names[pid]: round((cpu_after[pid] - cpu_before[pid]) * 100 / joined_in) for pid in everyone}
        joined_by_pid = memory_by_pid(watched)
        joined_rss = sum(joined_by_pid.values())
        per_client_kb = (joined_rss - idle_rss) * 1024 / plan.clients
        by_role = ", ".join(
            f"{roles[pid].split()[0]} {(joined_by_pid[pid] - idle_by_pid[pid]) * 1024 / plan.clients:.2f}"
            for pid in sorted(joined_by_pid) if pid in idle_by_pid)
        print(f"soak: all {plan.clients} clients registered and joined in {joined_in:.1f}s "
              f"({plan.clients / joined_in:.0f}/s); server memory {idle_rss:.0f} MB idle, {joined_rss:.0f} MB now: "
              f"{per_client_kb:.1f} KB per client ({by_role})", flush=True)
        print("soak: CPU while registering: " + ", ".join(f"{name} {pct}%" for name, pct in join_cpu.items()),
              flush=True)
        cpu_and_memory(watched), cpu_and_memory(gen_procs)  # prime psutil's CPU counters
        start = time.monotonic() + 0.5
        for go in gos:
            go.put(start)
        redis_before = (redis.commands(), time.monotonic()) if redis is not None else None
        redis_at_rate: list[float] = []
        cross_hist: dict[int, int] = {}
        sent: dict[str, int] = {}
        senders_reported = 0
        ledgers, disconnected, errors = [], [], []
        done = 0
        second: dict[str, object] = {"sent": 0, "delivered": 0, "hist": {}, "connected": {}}
        total_hist: dict[int, int] = {}
        next_print = time.monotonic() + 1.0
        deadline = start + plan.duration + plan.drain + 120
        while done < plan.total_procs:
            if time.monotonic() > deadline:
                raise SystemExit("soak: the generators did not finish in time")
            try:
                message = report.get(timeout=0.2)
            except queue.Empty:
                message = None
            if message and message[0] == "tick":
                _, index, s, d, hist, connected, cross = message
                for b, n in cross.items():
                    cross_hist[b] = cross_hist.get(b, 0) + n
                second["sent"] += s
                second["delivered"] += d
                for b, n in hist.items():
                    second["hist"][b] = second["hist"].get(b, 0) + n
                    total_hist[b] = total_hist.get(b, 0) + n
                second["connected"][index] = connected
            elif message and message[0] == "sent":
                sent.update(message[2])
                senders_reported += 1
                if senders_reported == plan.total_procs:
                    for go in gos:
                        go.put(dict(sent))
            elif message and message[0] == "done":
                ledgers += message[2]
                disconnected += message[3]
                errors += message[4]
                done += 1
            if time.monotonic() >= next_print:
                next_print += 1.0
                usage = cpu_and_memory(watched)
                gen_cpu = sum(c for c, _ in cpu_and_memory(gen_procs).values())
                p50, p99 = percentile(second["hist"], 0.5), percentile(second["hist"], 0.99)
                row = {"t": round(time.monotonic() - start, 1), "connected": sum(second["connected"].values()),
                       "sent_per_s": second["sent"], "delivered_per_s": second["delivered"], "p50_ms": p50,
                       "p99_ms": p99, "server": {f"{roles[pid]} {pid}": {"cpu": c, "rss_mb": round(m, 1)}
                                                  for pid, (c, m) in usage.items()},
                       "generator_cpu": gen_cpu}
                timeline.append(row)
                if redis is not None and row["sent_per_s"] >= 0.9 * plan.rate:
                    redis_at_rate.append(usage[redis.proc.pid][0])
                if redis_before is not None and row["t"] >= plan.duration and len(redis_before) == 2:
                    redis_before = (*redis_before, redis.commands(), time.monotonic())  # type: ignore[union-attr]
                procs = "  ".join(f"{name}: {v['cpu']:.0f}% {v['rss_mb']:.0f}MB" for name, v in row["server"].items())
                latency = f"p50 {p50:.1f}ms p99 {p99:.1f}ms" if p50 is not None else "p50 - p99 -"
                print(f"[{row['t']:6.1f}s] clients {row['connected']}  sent {row['sent_per_s']}/s  "
                      f"delivered {row['delivered_per_s']}/s  {latency}  |  {procs}  |  generator {gen_cpu:.0f}%",
                      flush=True)
                second = {"sent": 0, "delivered": 0, "hist": {}, "connected": second["connected"]}
        if server is not None:
            now = server_processes(supervisor_pid)
            for proc, _, _, _, _ in more:
                now.update(server_processes(proc.pid))
            if redis is not None:
                now[redis.proc.pid] = "redis"
            # The store's writer is the store's to replace (it kills one starved while the store is
            # behind: history/writer.py); the supervisor's children are what must not restart.
            started = {pid for pid, role in roles.items() if role != "writer"}
            if set(now) != started:
                gone = {f"{roles[pid]} {pid}" for pid in started - set(now)}
                problems.append(f"server processes died and were replaced during the run: {sorted(gone)}")
        problems += [f"server said: {e}" for e in errors]
        channel_of = {plan.nick(i): plan.channel_of(i) for i in range(plan.clients)}
        problems += verify(ledgers, sent, channel_of, disconnected)
        members = plan.clients / plan.channels
        total_sent = sum(sent.values())
        delivered = sum(r["received"] for r in ledgers)
        results = {
            "plan": {k: getattr(plan, k) for k in ("clients", "channels", "senders", "rate", "duration", "procs",
                                                  "sample", "websocket_share")},
            "websocket_clients": websockets,
            "workers": args.workers if server else None, "target": f"{host}:{port}",
            "history": bool(server) and args.history,
            "sent": total_sent, "delivered": delivered,
            "expected_deliveries": int(total_sent * (members - 1)),
            "throughput_msg_per_s": round(total_sent / plan.duration, 1),
            "deliveries_per_s": round(delivered / plan.duration, 1),
            "joined_in_s": round(joined_in, 2), "registrations_per_s": round(plan.clients / joined_in),
            "registration_cpu_percent": join_cpu,
            "server_rss_mb": {"idle": round(idle_rss, 1), "joined": round(joined_rss, 1)},
            "server_kb_per_client": round(per_client_kb, 2),
            "latency_ms": {"p50": percentile(total_hist, 0.5), "p99": percentile(total_hist, 0.99),
                           "max_bucket": percentile(total_hist, 1.0)},
            "hosts": args.cluster or 1,
            "cross_host_latency_ms": {"p50": percentile(cross_hist, 0.5), "p99": percentile(cross_hist, 0.99),
                                      "deliveries": sum(cross_hist.values())} if args.cluster else None,
            "redis": {"cpu_percent_at_rate": round(sum(redis_at_rate) / len(redis_at_rate), 1) if redis_at_rate
                      else None, "used_memory_mb": redis.memory_mb(),
                      "commands_per_s": round((redis_before[2] - redis_before[0]) / (redis_before[3] - redis_before[1]))
                      if len(redis_before) == 4 else None} if redis is not None else None,
            "timeline": timeline, "problems": problems, "machine": f"{os.cpu_count()} CPUs, "
            f"{psutil.virtual_memory().total / 2 ** 30:.0f} GiB", "machine_loop_ms": loop_ms,
        }
    finally:
        if idle_load is not None:
            idle_load.kill()
            idle_load.wait()
        for g in gens:
            g.join(5)
            if g.is_alive():
                g.kill()
        for proc in ([server] if server is not None else []) + [m[0] for m in more]:
            proc.send_signal(signal.SIGTERM)
        for proc in ([server] if server is not None else []) + [m[0] for m in more]:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        for directory in [data_dir, *(m[4] for m in more)]:
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)
        if redis is not None:
            redis.close()
    write_reports(Path(args.out), results)
    lat = results["latency_ms"]
    print(f"soak: sent {results['sent']} messages ({results['throughput_msg_per_s']}/s), delivered "
          f"{results['delivered']} of {results['expected_deliveries']} expected ({results['deliveries_per_s']}/s); "
          f"latency p50 {lat['p50']}ms p99 {lat['p99']}ms", flush=True)
    if results.get("cross_host_latency_ms"):
        cross, used = results["cross_host_latency_ms"], results["redis"]
        print(f"soak: {results['hosts']} hosts: cross-host latency p50 {cross['p50']}ms p99 {cross['p99']}ms "
              f"({cross['deliveries']} deliveries measured); Redis: {used['cpu_percent_at_rate']}% CPU at full rate, "
              f"{used['used_memory_mb']} MB, {used['commands_per_s']} commands/s", flush=True)
    if problems:
        print(f"soak: FAILED with {len(problems)} problem(s):", flush=True)
        for p in problems[:50]:
            print(f"  - {p}", flush=True)
        return 1
    print("soak: passed: nothing lost, doubled or reordered; nobody disconnected; no process restarted", flush=True)
    return 0


def write_reports(out: Path, results: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(json.dumps(results, indent=1))
    lat = results["latency_ms"]
    lines = ["# Soak run", "", f"- plan: {results['plan']}", f"- target: {results['target']}, "
             f"workers: {results['workers']}, machine: {results['machine']} (a fixed CPU loop: "
             f"{results['machine_loop_ms']} ms)",
             f"- sent {results['sent']} ({results['throughput_msg_per_s']} msg/s), delivered "
             f"{results['delivered']} of {results['expected_deliveries']} ({results['deliveries_per_s']}/s)",
             f"- latency p50 {lat['p50']} ms, p99 {lat['p99']} ms",
             f"- registered and joined {results['plan']['clients']} clients in {results['joined_in_s']} s "
             f"({results['registrations_per_s']}/s); server memory {results['server_kb_per_client']} KB per client "
             f"beyond the idle {results['server_rss_mb']['idle']} MB",
             f"- verdict: {'passed' if not results['problems'] else 'FAILED'}"]
    if results.get("cross_host_latency_ms"):
        cross, used = results["cross_host_latency_ms"], results["redis"]
        lines.insert(-1, f"- {results['hosts']} hosts on one Redis: cross-host latency p50 {cross['p50']} ms, "
                         f"p99 {cross['p99']} ms; Redis {used['cpu_percent_at_rate']}% CPU at full rate, "
                         f"{used['used_memory_mb']} MB, {used['commands_per_s']} commands/s")
    lines += [f"  - {p}" for p in results["problems"][:50]]
    (out / "soak.md").write_text("\n".join(lines) + "\n")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    t = [r["t"] for r in results["timeline"]]
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    axes[0].plot(t, [r["delivered_per_s"] for r in results["timeline"]], label="deliveries/s")
    axes[0].plot(t, [r["sent_per_s"] for r in results["timeline"]], label="sent/s")
    axes[1].plot(t, [r["p99_ms"] for r in results["timeline"]], label="p99 ms")
    axes[1].plot(t, [r["p50_ms"] for r in results["timeline"]], label="p50 ms")
    for name in results["timeline"][0]["server"] if results["timeline"] else []:
        axes[2].plot(t, [r["server"].get(name, {}).get("cpu", 0) for r in results["timeline"]], label=name)
    axes[2].plot(t, [r["generator_cpu"] for r in results["timeline"]], label="generator")
    for ax in axes:
        ax.legend(fontsize=7)
    axes[2].set_xlabel("seconds")
    fig.savefig(out / "soak.png", dpi=90)


if __name__ == "__main__":
    sys.exit(main())
