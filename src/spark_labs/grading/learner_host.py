"""``python -m spark_labs.grading.learner_host``: the learner's kernel, started behind the wall.

The judge starts this inside the submission's sandbox (:mod:`.boundary`). It

* caps each process's address space (``RLIMIT_AS``) before the kernel starts, so a MemoryError comes
  before the cgroup's OOM kill;
* becomes a child subreaper, so what the learner's code starts and abandons is re-parented here;
* starts one IPython kernel and writes its connection (ports, key) as one JSON line on stdout, which is how
  the judge, outside the wall, reaches it;
* interrupts the kernel when the judge writes ``interrupt`` on stdin (a cell past its time or its output
  cap: the judge cannot signal a process in another PID namespace);
* waits until stdin closes (the judge is done, or died), then stops the kernel and everything below it, and
  writes one last JSON line: the processes it had to stop and the peak memory of its children.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import sys

from jupyter_client import KernelManager

from .worker import become_subreaper, stop_descendants


def main() -> int:
    limit = int(os.environ.get("SPARK_LABS_LEARNER_MEMORY", "0") or 0)
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    become_subreaper()
    sockets = os.environ.get("SPARK_LABS_LEARNER_SOCKETS")
    # Behind the wall the kernel listens on Unix sockets in a folder the judge sees too: TCP on 127.0.0.1 would
    # be the loopback of the wall's own network namespace, which the judge cannot reach.
    where = {"transport": "ipc", "ip": os.path.join(sockets, "kernel")} if sockets else {}
    manager = KernelManager(kernel_name=os.environ.get("SPARK_LABS_LEARNER_KERNEL", "python3"), **where)
    manager.start_kernel(cwd=os.getcwd())
    info = manager.get_connection_info(session=False)
    info = {key: (value.decode() if isinstance(value, bytes) else value) for key, value in info.items()}
    print(json.dumps(info), flush=True)
    for line in sys.stdin:  # ends when the judge closes the pipe or goes away
        if line.strip() == "interrupt":  # the judge cannot signal across the PID namespace; this process can
            manager.interrupt_kernel()
    with contextlib.suppress(Exception):  # stopped below either way
        manager.shutdown_kernel(now=True)
    leftover = stop_descendants()
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"leftover": leftover, "peak_rss_kb": peak}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
