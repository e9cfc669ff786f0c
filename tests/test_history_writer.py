"""The store's writing jobs (history/writer.py): in order, one at a time, in the idle-priority
writer process while the store keeps up and on the store's own threads (nice +10, normal) when it
falls behind; a writer that is starved or gone costs no job."""
import os
import signal
import threading
import time

import psutil
import pytest

from history import writer as writer_module
from history.writer import IDLE, LOW, NORMAL, WritingJobs

WAIT = 10.0


@pytest.fixture
def jobs(tmp_path):
    made = WritingJobs(str(tmp_path / "history.sqlite3"))
    assert made.idle_writer_ready(WAIT)
    yield made
    made.shutdown()


def where(db) -> tuple[int, int]:
    return os.getpid(), os.sched_getscheduler(0)


def niceness(db) -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def logged(db, path: str, n: int) -> int:
    """Appends its start and end to a file both processes write: overlapping jobs would interleave."""
    with open(path, "a") as f:
        f.write(f"start {n}\n")
        f.flush()
        f.write(f"end {n}\n")
    return n


def fails(db) -> None:
    raise ValueError("no")


def hangs_in_the_child(db, parent: int) -> int:
    """Stands for a commit in a writer that never gets a core."""
    if os.getpid() != parent:
        time.sleep(3 * WAIT)
    return os.getpid()


def rows_stored(db) -> int:
    return db.history._db.execute("SELECT count(*) FROM messages").fetchone()[0]


def test_jobs_wait_for_no_idle_writer_that_has_not_opened_its_database(tmp_path):
    made = WritingJobs(str(tmp_path / "history.sqlite3"))
    try:
        os.kill(made.idle_pid, signal.SIGSTOP)  # stands for a writer that never gets a core to start
        assert made.submit(where).result(WAIT)[0] == os.getpid()
        assert made.submit(where, now=True).result(WAIT)[0] == os.getpid()
        os.kill(made.idle_pid, signal.SIGCONT)
        assert made.idle_writer_ready(WAIT)
        assert made.submit(where).result(WAIT)[0] == made.idle_pid
    finally:
        made.shutdown()


def test_a_job_asked_for_now_runs_on_a_thread_whatever_the_tier(jobs):
    assert jobs.submit(where, now=True).result(WAIT)[0] == os.getpid()
    assert jobs.submit(where).result(WAIT)[0] == jobs.idle_pid


def test_jobs_run_in_the_idle_writer_process_unless_the_store_is_behind(jobs):
    pid, policy = jobs.submit(where).result(WAIT)
    assert pid == jobs.idle_pid != os.getpid() and policy == os.SCHED_IDLE
    assert psutil.Process(pid).ppid() == os.getpid()
    base = os.getpriority(os.PRIO_PROCESS, os.getpid())
    jobs.tier = LOW
    assert jobs.submit(where).result(WAIT) == (os.getpid(), os.sched_getscheduler(0))
    assert jobs.submit(niceness).result(WAIT) == base + 10
    jobs.tier = NORMAL
    assert jobs.submit(niceness).result(WAIT) == base
    jobs.tier = IDLE
    assert jobs.submit(where).result(WAIT)[0] == pid
    assert jobs.ran == [2, 2, 1]  # counted where they ran (for /metrics)


def test_jobs_run_one_at_a_time_in_order_across_both_sides(jobs, tmp_path):
    gate = threading.Event()
    trace = str(tmp_path / "trace")
    jobs.tier = NORMAL
    first = jobs.submit(lambda db: gate.wait(WAIT))  # holds the others back while the tier changes
    futures = []
    for n in range(30):
        jobs.tier = n % 3
        futures.append(jobs.submit(logged, trace, n))
    gate.set()
    assert first.result(WAIT) is True
    assert [f.result(WAIT) for f in futures] == list(range(30))
    with open(trace) as f:
        assert f.read().split("\n")[:-1] == [f"{e} {n}" for n in range(30) for e in ("start", "end")]


def test_a_failing_job_fails_only_its_own_future_on_either_side(jobs):
    for tier in (IDLE, LOW, NORMAL):
        jobs.tier = tier
        bad, good = jobs.submit(fails), jobs.submit(where)
        assert isinstance(bad.exception(WAIT), ValueError)
        assert good.result(WAIT)[0] == (jobs.idle_pid if tier == IDLE else os.getpid())


def test_a_starved_writer_is_killed_while_the_store_is_behind_and_its_job_is_done_on_a_thread(jobs):
    child = jobs.idle_pid
    stuck = jobs.submit(hangs_in_the_child, os.getpid())
    after = jobs.submit(where)
    jobs.tier = LOW
    deadline = time.monotonic() + WAIT
    while not jobs.unstick(after=0.0):  # the job is in the child's hands once it is running there
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert stuck.result(WAIT) == os.getpid()  # done again, here
    assert jobs.stuck == 1
    assert after.result(WAIT)[0] == os.getpid()
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE


def test_a_writer_that_died_costs_no_job_and_is_started_again(jobs, monkeypatch):
    first = jobs.idle_pid
    jobs.submit(rows_stored).result(WAIT)
    psutil.Process(first).kill()
    psutil.Process(first).wait(WAIT)
    assert jobs.submit(where).result(WAIT)[0] == os.getpid()  # too soon to start another: the thread
    monkeypatch.setattr(writer_module, "RESPAWN_INTERVAL", 0.0)
    assert jobs.submit(where).result(WAIT)[0] == os.getpid()  # a new one starts: the thread meanwhile
    assert jobs.idle_pid not in (None, first) and jobs.idle_writer_ready(WAIT)
    pid, policy = jobs.submit(where).result(WAIT)
    assert pid not in (first, os.getpid()) and pid == jobs.idle_pid and policy == os.SCHED_IDLE
