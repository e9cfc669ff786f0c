"""The store's writing jobs (history/writer.py): in order, one at a time, on the low-priority
thread while the store keeps up and on the normal one while it hurries."""
import os
import threading

from history.writer import WritingThreads

WAIT = 10.0


def priority() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_jobs_run_on_the_low_thread_unless_the_store_hurries():
    writer = WritingThreads(10)
    base = os.getpriority(os.PRIO_PROCESS, os.getpid())
    assert writer.submit(priority).result(WAIT) == base + 10
    writer.hurry = True
    assert writer.submit(priority).result(WAIT) == base
    writer.hurry = False
    assert writer.submit(priority).result(WAIT) == base + 10
    writer.shutdown()


def test_jobs_run_one_at_a_time_in_order_across_both_threads():
    writer = WritingThreads(10)
    gate = threading.Event()
    running = []
    done = []
    overlap = []

    def job(n: int) -> int:
        if running:
            overlap.append(n)
        running.append(n)
        if n == 0:
            gate.wait(WAIT)  # the first job holds the others back while hurry flips
        running.remove(n)
        done.append(n)
        return n

    futures = [writer.submit(job, 0)]
    for n in range(1, 40):
        writer.hurry = n % 3 == 0
        futures.append(writer.submit(job, n))
    gate.set()
    assert [f.result(WAIT) for f in futures] == list(range(40))
    assert done == list(range(40)) and overlap == []
    writer.shutdown()


def test_a_failing_job_fails_only_its_own_future():
    writer = WritingThreads(10)

    def fail():
        raise ValueError("no")
    bad, good = writer.submit(fail), writer.submit(lambda: 7)
    assert isinstance(bad.exception(WAIT), ValueError)
    assert good.result(WAIT) == 7
    writer.shutdown()
