"""End-to-end throughput to the final state, per worker process (issue "Worker"'s figure).

``python -m bench.e2e_final [--jobs N] [--threads T]``: one ``voicecall worker`` process with T
threads; N record calls enqueued through the Python API; the simulator's clock runs 1,000x
fast so each call ends about 50 ms after it starts and its callback reaches the API. The rate
is N ÷ (first enqueue → last job final), at 0 ms and at 200 ms provider latency.
Prints a Markdown table. Not a test: figures on a shared 2-core machine vary by 10-20 %.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

from bench.core import phone
from bench.harness import FINAL, BenchStack, wait_until

TIME_SCALE = 0.001


def measure(stack: BenchStack, latency_ms: int, jobs: int, threads: int) -> dict[str, float]:
    stack.reset(latency_ms=latency_ms, time_scale=TIME_SCALE, callback_retry_delay_s=5)
    worker = stack.start_worker(1, threads, poll_time_scale=TIME_SCALE, poll_margin_s=30)
    client = stack.client()
    start = time.time()
    ids = [client.enqueue_record(phone(i), "rec-bench").id for i in range(jobs)]
    wait_until(lambda: stack.count_in(FINAL) >= jobs, 600, what="every job final")
    finished = [float(t or 0) for t in stack.field_of(ids, "finished_at")]
    states = Counter(stack.field_of(ids, "state"))
    polls = sum(int(p or 0) for p in stack.field_of(ids, "polls"))
    stack.stop(worker)
    elapsed = max(finished) - start
    return {
        "latency_ms": latency_ms,
        "rate": jobs / elapsed,
        "seconds": elapsed,
        "completed": states.get("completed", 0),
        "polls_per_call": polls / jobs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    stack = BenchStack()
    stack.start()
    try:
        rows = [measure(stack, latency, args.jobs, args.threads) for latency in (0, 200)]
    finally:
        stack.close()
    print(
        f"| eSMS latency | jobs | jobs/s to final (1 process × {args.threads} threads) | completed | status requests per call |"
    )
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['latency_ms']:.0f} ms | {args.jobs} | {row['rate']:.1f} | {row['completed']:.0f} | {row['polls_per_call']:.2f} |"
        )


if __name__ == "__main__":
    main()
