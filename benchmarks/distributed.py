"""Fitting on a Dask cluster against the in-process fit (issue 14, Deliver 7).

Everything is measured on one machine, against a
``distributed.LocalCluster(n_workers=2, threads_per_worker=1,
processes=True)``: the cluster's two single-threaded worker processes
against the in-process fit with two BLAS threads (``threadpoolctl``), on the
same data, the same model and the same number of L-BFGS iterations
(``tol=0``, fixed ``max_iter``).  Speed figures are ratios of timings taken
in the same run, medians of interleaved repeats: the machine is shared and
noisy, and absolute times mean little.

    python benchmarks/distributed.py                 # all sections (~6 minutes)
    python benchmarks/distributed.py --quick         # small sizes, a smoke test (< 1 minute)
    python benchmarks/distributed.py --sections time --repeats 7

Data
----
Ragged bags of 5-35 elements (mean 20), D = 32 features, float64, binary
labels (a positive bag has one element whose first feature is shifted by
+3).  Chunk ``i`` of the data is drawn from seed ``i`` wherever it is made,
so the workers make their own chunks (X never travels from the client) and
this process makes the same numbers for the in-process fit.  Two forms of
the same elements: a 3D NaN-padded array (n_bags, 35, 32) -- a dask array
chunked along the bags -- and a ragged ``dask.bag.Bag`` of 2D arrays, one
bag per item (a list in process).

Sections
--------
time    time per L-BFGS iteration (fit time / ``n_iter_``, packing and
        setup included), cluster / in-process, on X persisted on the
        workers beforehand (as X is in memory before an in-process fit);
        beside it the time per objective evaluation and the setup (fit time
        minus the evaluations), from a wrapper around the objective.
bytes   bytes on the wire per objective evaluation, counted in every TCP
        comm of this process (the client and the scheduler of a
        LocalCluster live here) and of the workers, by message type: the
        client's sends and receipts, the scheduler's to and from the
        workers (heartbeats apart), worker-to-worker bytes over the whole
        fit, for two data sizes and two partition counts, beside the
        parameter vector's size.  Evaluations are counted twice: calls of
        the client's objective, and ``_evaluate`` tasks that reached memory
        on the scheduler (its "evaluate" task prefix) / partitions.
memory  peak RSS of each worker during a fit (sampled every 5 ms with
        psutil from this process) above its RSS before the fit, over its
        share of the packed elements; against the same figure of an
        in-process fit, run in a fresh process, over all the elements.
limit   a fit on a LocalCluster whose workers' ``memory_limit`` is below
        the size of X (the dask array; never persisted, so no process
        ever holds all of it): each worker's peak RSS, spilling and
        pausing (from the worker logs and spill counters).

This file is called ``distributed.py``: its folder is taken off
``sys.path`` before ``import distributed``, which would otherwise import
this file.
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse
import collections
import contextvars
import gc
import multiprocessing
import threading
import time
import warnings

import numpy as np
import psutil
from threadpoolctl import threadpool_limits

D = 32  # features per element
MIN_LEN, MAX_LEN = 5, 35
MEAN_LEN = (MIN_LEN + MAX_LEN) / 2
DTYPE = np.float64
MiB = 2**20


# --------------------------------------------------------------------------
# data: chunk i drawn from seed i, on a worker or here
# --------------------------------------------------------------------------


def chunk_meta(seed, n_bags):
    """Lengths and labels of chunk ``seed`` (cheap: no elements drawn)."""
    rng = np.random.default_rng([seed, 0])
    lengths = rng.integers(MIN_LEN, MAX_LEN + 1, size=n_bags)
    y = rng.integers(0, 2, size=n_bags)
    return lengths, y


def chunk_bags(seed, n_bags):
    """The bags of chunk ``seed``: a list of (length_i, D) arrays."""
    lengths, y = chunk_meta(seed, n_bags)
    rng = np.random.default_rng([seed, 1])
    elements = rng.standard_normal((int(lengths.sum()), D)).astype(DTYPE, copy=False)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    elements[starts[y == 1], 0] += 3.0  # the positive bags' witness
    return np.split(elements, np.cumsum(lengths)[:-1])


def chunk_padded(seed, n_bags):
    """The same bags NaN-padded to MAX_LEN steps: (n_bags, MAX_LEN, D)."""
    bags = chunk_bags(seed, n_bags)
    out = np.full((n_bags, MAX_LEN, D), np.nan, dtype=DTYPE)
    for i, bag in enumerate(bags):
        out[i, : len(bag)] = bag
    return out


class Data:
    """``n_chunks`` chunks of ``bags_per_chunk`` bags: sizes, labels, dask and NumPy forms."""

    def __init__(self, n_elements, n_chunks):
        self.n_chunks = n_chunks
        self.bags_per_chunk = max(1, round(n_elements / MEAN_LEN / n_chunks))
        metas = [chunk_meta(i, self.bags_per_chunk) for i in range(n_chunks)]
        self.chunk_elements = [int(lengths.sum()) for lengths, _ in metas]
        self.y = np.concatenate([y for _, y in metas])
        self.n_bags = len(self.y)
        self.n_elements = sum(self.chunk_elements)
        self.packed_bytes = self.n_elements * D * np.dtype(DTYPE).itemsize
        self.padded_bytes = self.n_bags * MAX_LEN * D * np.dtype(DTYPE).itemsize

    def dask_array(self):
        import dask
        import dask.array as da

        n = self.bags_per_chunk
        return da.concatenate(
            [
                da.from_delayed(
                    dask.delayed(chunk_padded)(i, n), shape=(n, MAX_LEN, D), dtype=DTYPE
                )
                for i in range(self.n_chunks)
            ]
        )

    def dask_bag(self):
        import dask
        import dask.bag as db

        return db.from_delayed(
            [dask.delayed(chunk_bags)(i, self.bags_per_chunk) for i in range(self.n_chunks)]
        )

    def padded(self):
        return np.concatenate([chunk_padded(i, self.bags_per_chunk) for i in range(self.n_chunks)])

    def bags(self):
        return [bag for i in range(self.n_chunks) for bag in chunk_bags(i, self.bags_per_chunk)]

    def describe(self):
        return (
            f"{self.n_bags:,} bags of {MIN_LEN}-{MAX_LEN} elements, {self.n_elements:,} elements x "
            f"{D} features, {np.dtype(DTYPE).name}, {self.n_chunks} chunks; packed "
            f"{self.packed_bytes / MiB:.0f} MiB, NaN-padded to {MAX_LEN} steps "
            f"{self.padded_bytes / MiB:.0f} MiB"
        )


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def estimator(iters):
    from sk_attention import AttentionClassifier

    return AttentionClassifier(max_iter=iters, tol=0.0, random_state=0)


def new_cluster(**kwargs):
    import distributed

    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, **kwargs
    )
    return cluster, distributed.Client(cluster)


def persist(client, collection):
    import distributed

    collection = collection.persist()
    distributed.wait(collection)
    return collection


def holders(client, collection):
    """For each chunk of a persisted collection (in order), the worker holding it."""
    from distributed import futures_of

    futures = {future.key: future for future in futures_of(collection)}
    keys = [key for key in _flatten(collection.__dask_keys__())]
    who = client.who_has([futures[key] for key in keys])
    return [min(who[key]) for key in keys]


def placement(client, collection):
    """Number of persisted chunks held by each worker, in worker order."""
    counts = collections.Counter(holders(client, collection))
    return [counts.get(w, 0) for w in sorted(client.scheduler_info()["workers"])]


def _flatten(keys):
    for key in keys:
        if isinstance(key, list):
            yield from _flatten(key)
        else:
            yield key


class Recorder:
    """Wraps the objective of the in-memory and the dask training data.

    Records, for every evaluation: its seconds, its parameters' bytes and,
    if ``counters`` is given, a snapshot of this process's comm counters
    before and after (no network traffic: the client and the scheduler of a
    LocalCluster live in this process).
    """

    def __init__(self, counters=False):
        self.counters = counters
        self.evaluations = []

    def __enter__(self):
        import sk_attention._base as base
        import sk_attention._dask as dask_module

        self._patched = []
        for cls in (base._InMemoryData, dask_module.DaskTrainingData):
            original = cls.objective
            self._patched.append((cls, original))
            cls.objective = self._wrap(original)
        return self

    def _wrap(self, original):
        recorder = self

        def objective(data, *args, **kwargs):
            evaluate = original(data, *args, **kwargs)

            def recorded(params):
                before = comm_counts() if recorder.counters else None
                start = time.perf_counter()
                out = evaluate(params)
                seconds = time.perf_counter() - start
                after = comm_counts() if recorder.counters else None
                nbytes = sum(np.asarray(a).nbytes for a in params.values())
                recorder.evaluations.append((seconds, nbytes, before, after))
                return out

            return recorded

        return objective

    def __exit__(self, *exc):
        for cls, original in self._patched:
            cls.objective = original


def fit_timed(X, y, iters):
    """Fit seconds, the fitted model, evaluations and their seconds."""
    model = estimator(iters)
    with Recorder() as recorder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gc.collect()
        start = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - start
    evaluations = len(recorder.evaluations)
    eval_seconds = sum(s for s, *_ in recorder.evaluations)
    return seconds, model, evaluations, eval_seconds


def relative_difference(a, b):
    arrays = [(a.coefs_, b.coefs_), (a.intercepts_, b.intercepts_)]
    difference = max(np.abs(x[k] - z[k]).max() for x, z in arrays for k in x)
    size = max(np.abs(x[k]).max() for x, _ in arrays for k in x)
    return difference / size


def span(values):
    """ "7" or "7-9": the values of several runs."""
    values = sorted(set(values))
    return str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}"


def load():
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def print_table(title, header, rows):
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
    sys.stdout.flush()


# --------------------------------------------------------------------------
# bytes on the wire: every TCP comm's reads and writes, by message type
# --------------------------------------------------------------------------


def install_comm_counter():
    """Count the bytes every TCP comm of this process writes and reads.

    Keyed by (direction, local address, peer address, message type): the
    "op" of the message(s), or "reply:<op>" for an answer on a comm whose
    last request was <op>.  Bytes are what ``TCP.write`` puts on the socket
    (it returns the count, frame headers included) and what ``TCP.read``
    takes from it (8-byte length prefix and every frame).
    """
    from distributed.comm import tcp

    if getattr(tcp.TCP, "_bench_counts", None) is not None:
        return
    counts = collections.Counter()
    reading = contextvars.ContextVar("bench_reading", default=None)
    write, read, read_bytes_rw = tcp.TCP.write, tcp.TCP.read, tcp.read_bytes_rw

    def kind(comm, msg):
        items = msg if isinstance(msg, (list, tuple)) else [msg]
        ops = sorted({str(m["op"]) for m in items if isinstance(m, dict) and "op" in m})
        if ops:
            comm._bench_op = "+".join(ops)
            return comm._bench_op
        return "reply:" + getattr(comm, "_bench_op", "handshake")

    async def counted_write(self, msg, *args, **kwargs):
        local, peer = self.local_address, self.peer_address
        n = await write(self, msg, *args, **kwargs)
        counts[("write", local, peer, kind(self, msg))] += n
        return n

    async def counted_read(self, *args, **kwargs):
        local, peer = self.local_address, self.peer_address
        sizes = []
        token = reading.set(sizes)
        try:
            msg = await read(self, *args, **kwargs)
        finally:
            reading.reset(token)
        counts[("read", local, peer, kind(self, msg))] += 8 + sum(sizes)
        return msg

    async def counted_read_bytes_rw(stream, n):
        sizes = reading.get()
        if sizes is not None:
            sizes.append(n)
        return await read_bytes_rw(stream, n)

    tcp.TCP.write, tcp.TCP.read, tcp.read_bytes_rw = (
        counted_write,
        counted_read,
        counted_read_bytes_rw,
    )
    tcp.TCP._bench_counts = counts


def comm_counts():
    from distributed.comm import tcp

    return dict(tcp.TCP._bench_counts)


def difference(after, before):
    return {
        key: value - before.get(key, 0)
        for key, value in after.items()
        if value != before.get(key, 0)
    }


def evaluate_tasks(client):
    """``_evaluate`` tasks that reached memory, ever (the scheduler's task prefix)."""

    def count(dask_scheduler):
        # key_split drops a leading underscore: "_evaluate-<id>" has prefix "evaluate"
        total = 0
        for name in ("evaluate", "_evaluate"):
            prefix = dask_scheduler.task_prefixes.get(name)
            if prefix is not None:
                total += prefix.state_counts.get("memory", 0)
        return total

    return client.run_on_scheduler(count)


# --------------------------------------------------------------------------
# memory: RSS sampled every few ms from another thread
# --------------------------------------------------------------------------


class RSSSampler:
    """Peak RSS of some processes (psutil), sampled in a thread every ``interval`` s."""

    def __init__(self, pids, interval=0.005):
        self.processes = [psutil.Process(pid) for pid in pids]
        self.interval = interval
        self.peaks = [p.memory_info().rss for p in self.processes]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for i, process in enumerate(self.processes):
                try:
                    self.peaks[i] = max(self.peaks[i], process.memory_info().rss)
                except psutil.Error:
                    pass
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def rss(pids):
    return [psutil.Process(pid).memory_info().rss for pid in pids]


def settled_rss(pids, seconds=1.0):
    """RSS after letting the processes settle (median of a few samples)."""
    samples = []
    for _ in range(5):
        time.sleep(seconds / 5)
        samples.append(rss(pids))
    return [int(np.median(column)) for column in zip(*samples)]


def _in_process_memory(n_elements, n_chunks, iters, queue):
    """In a fresh process: RSS before and at the peak of an in-process fit (2 threads)."""
    data = Data(n_elements, n_chunks)
    X = data.padded()
    with threadpool_limits(2), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator(1).fit(X[:50], data.y[:50])  # imports, first-call costs
        gc.collect()
        pid = os.getpid()
        before = settled_rss([pid])[0]
        with RSSSampler([pid]) as sampler:
            model = estimator(iters).fit(X, data.y)
    queue.put((before, sampler.peaks[0], model.n_iter_))


def in_process_memory(data, iters):
    """``_in_process_memory`` in a spawned process, with the workers' malloc setting."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    # the nanny starts the workers with this (distributed.nanny.pre-spawn-environ)
    saved = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    os.environ["MALLOC_TRIM_THRESHOLD_"] = "65536"
    try:
        process = context.Process(
            target=_in_process_memory, args=(data.n_elements, data.n_chunks, iters, queue)
        )
        process.start()
        result = queue.get()
        process.join()
    finally:
        if saved is None:
            del os.environ["MALLOC_TRIM_THRESHOLD_"]
        else:
            os.environ["MALLOC_TRIM_THRESHOLD_"] = saved
    return result


# --------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------


def warm_up(client):
    """Imports on the workers and first-call costs, before anything is timed."""
    data = Data(2000, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator(2).fit(data.dask_array(), data.y)
        estimator(2).fit(data.dask_bag(), data.y)
        estimator(2).fit(data.padded(), data.y)


def section_time(args, client):
    rows = []
    for form in args.forms.split(","):
        data = Data(args.elements, args.chunks)
        if form == "array":
            X_local, X_dask = data.padded(), persist(client, data.dask_array())
        else:
            X_local, X_dask = data.bags(), persist(client, data.dask_bag())
        where = placement(client, X_dask)
        jobs = {"in-process (2 threads)": X_local, "cluster (2 workers x 1 thread)": X_dask}
        results = {name: [] for name in jobs}
        load_before = load()
        names = list(jobs)
        for repeat in range(args.repeats):
            # alternate which goes first: neither always runs after the other
            for name in names if repeat % 2 == 0 else names[::-1]:
                with threadpool_limits(2):
                    results[name].append(fit_timed(jobs[name], data.y, args.iters))
        load_after = load()
        local, cluster = (results[name] for name in names)

        def median(runs, what):
            return float(np.median([what(run) for run in runs]))

        per_iter = [median(runs, lambda r: r[0] / r[1].n_iter_) for runs in (local, cluster)]
        per_eval = [median(runs, lambda r: r[3] / r[2]) for runs in (local, cluster)]
        pair_ratios = [
            (c[0] / c[1].n_iter_) / (i[0] / i[1].n_iter_) for i, c in zip(local, cluster)
        ]
        setup = [median(runs, lambda r: r[0] - r[3]) for runs in (local, cluster)]
        iters = [span(run[1].n_iter_ for run in runs) for runs in (local, cluster)]
        evals = [span(run[2] for run in runs) for runs in (local, cluster)]
        diff = relative_difference(local[-1][1], cluster[-1][1])
        label = "3D NaN-padded dask array" if form == "array" else "dask.bag.Bag of 2D arrays"
        print(
            f"\n[time] {label}: {data.describe()}; chunks per worker {where}; "
            f"load average {load_before} -> {load_after}",
            flush=True,
        )
        rows += [
            (
                label,
                "L-BFGS iterations / objective evaluations per fit",
                f"{iters[0]} / {evals[0]}",
                f"{iters[1]} / {evals[1]}",
                "",
                "",
            ),
            (
                label,
                "parameters: largest difference / largest parameter",
                "",
                "",
                f"{diff:.1e}",
                "",
            ),
            (
                label,
                "time per iteration (fit time / n_iter_)",
                f"{per_iter[0]:.3f} s",
                f"{per_iter[1]:.3f} s",
                f"**{per_iter[1] / per_iter[0]:.2f}**",
                "<= 1.5",
            ),
            (
                label,
                "the same ratio in each round of the repeats (smallest - largest)",
                "",
                "",
                f"{min(pair_ratios):.2f} - {max(pair_ratios):.2f}",
                "",
            ),
            (
                label,
                "time per objective evaluation",
                f"{per_eval[0]:.3f} s",
                f"{per_eval[1]:.3f} s",
                f"{per_eval[1] / per_eval[0]:.2f}",
                "",
            ),
            (
                label,
                "cost of the round trip per evaluation: cluster - in-process evaluation (this run)",
                "",
                f"{(per_eval[1] - per_eval[0]) * 1e3:.0f} ms",
                "",
                "",
            ),
            (
                label,
                "setup: fit time - evaluations (validation, packing, workspaces)",
                f"{setup[0]:.2f} s",
                f"{setup[1]:.2f} s",
                f"{setup[1] / setup[0]:.2f}",
                "",
            ),
        ]
        del X_local, X_dask, jobs, results, local, cluster
        gc.collect()
    print_table(
        f"Time per L-BFGS iteration, medians of {args.repeats} interleaved repeats, "
        f"max_iter={args.iters}, tol=0 (seconds: this run only; the ratio is the result)",
        ["input", "measurement", "in-process", "cluster", "cluster / in-process", "target"],
        rows,
    )


def section_bytes(args, client):
    client.run(install_comm_counter)
    install_comm_counter()
    scheduler = client.scheduler.address
    workers = sorted(client.scheduler_info()["workers"])
    configs = [
        (args.small_elements, args.chunks),
        (args.elements, args.chunks),
        (args.elements, 2 * args.chunks),
    ]
    rows = []
    for n_elements, n_chunks in configs:
        data = Data(n_elements, n_chunks)
        X = persist(client, data.dask_array())
        tasks_before = evaluate_tasks(client)
        workers_before = client.run(comm_counts)
        model = estimator(args.bytes_iters)
        with Recorder(counters=True) as recorder, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X, data.y)
        workers_after = client.run(comm_counts)
        tasks = evaluate_tasks(client) - tasks_before
        main_locals = {key[1] for key in comm_counts()}
        client_locals = {key[1] for key in comm_counts() if key[2] == scheduler}

        # steady state: every evaluation but the first
        steady = recorder.evaluations[1:]
        totals = collections.Counter()
        for _, _, before, after in steady:
            for (direction, local, peer, op), n in difference(after, before).items():
                if peer == scheduler:  # the client's comms (and the cluster object's)
                    side = "client sent" if direction == "write" else "client received"
                elif peer in client_locals:  # the scheduler's side of the same comms
                    continue
                elif "heartbeat" in op:
                    side = "heartbeats"
                else:  # the scheduler's comms with the workers
                    side = (
                        "scheduler to workers" if direction == "write" else "workers to scheduler"
                    )
                totals[side] += n
        per_eval = {side: n / len(steady) for side, n in totals.items()}
        # worker-to-worker bytes over the whole fit: the parameters fetched from
        # the worker that holds them (and any partition moved or task stolen)
        between = 0
        for address in workers:
            for (direction, local, peer, op), n in difference(
                workers_after[address], workers_before[address]
            ).items():
                if direction == "write" and peer != scheduler and peer not in main_locals:
                    between += n
        param_bytes = recorder.evaluations[0][1]
        client_bytes = per_eval.get("client sent", 0) + per_eval.get("client received", 0)
        rows.append(
            (
                f"{data.n_elements:,}",
                n_chunks,
                f"{data.padded_bytes / MiB:.0f} MiB",
                f"{param_bytes:,}",
                f"{len(recorder.evaluations)} / {tasks / n_chunks:g}",
                f"{per_eval.get('client sent', 0):,.0f}",
                f"{per_eval.get('client received', 0):,.0f}",
                f"{per_eval.get('scheduler to workers', 0):,.0f}",
                f"{per_eval.get('workers to scheduler', 0):,.0f}",
                f"{per_eval.get('heartbeats', 0):,.0f}",
                f"{between:,} ({between / len(recorder.evaluations):,.0f})",
                f"{client_bytes / (2 * param_bytes):.2f}",
            )
        )
        del X
        gc.collect()
    print_table(
        f"Bytes on the wire per objective evaluation (mean over evaluations 2..n; "
        f"max_iter={args.bytes_iters}, tol=0; 3D NaN-padded dask array persisted on the workers)",
        [
            "elements",
            "partitions",
            "X (dask array)",
            "parameter bytes (= gradient bytes)",
            "evaluations: client calls / evaluate tasks ÷ partitions",
            "client → scheduler",
            "scheduler → client",
            "scheduler → workers",
            "workers → scheduler (no heartbeats)",
            "heartbeats (both ways)",
            "worker ↔ worker, whole fit (per evaluation)",
            "client bytes / (parameters + gradient)",
        ],
        rows,
    )


def section_memory(args):
    data = Data(args.elements, args.chunks)
    before, peak, n_iter = in_process_memory(data, args.memory_iters)
    in_process_factor = (peak - before) / data.packed_bytes
    cluster, client = new_cluster()
    try:
        warm_up(client)
        X = persist(client, data.dask_array())
        workers = sorted(client.scheduler_info()["workers"])
        pids = client.run(os.getpid)
        pids = [pids[w] for w in workers]
        # each worker's share of the packed elements: the chunks it holds
        share = [0] * len(workers)
        for worker, elements in zip(holders(client, X), data.chunk_elements):
            share[workers.index(worker)] += elements * D * np.dtype(DTYPE).itemsize
        gc.collect()
        client.run(gc.collect)
        rss_before = settled_rss(pids)
        with RSSSampler(pids) as sampler, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = estimator(args.memory_iters).fit(X, data.y)
        rss_after = settled_rss(pids)
    finally:
        client.close()
        cluster.close()
    print(
        f"\n[memory] {data.describe()}; max_iter={args.memory_iters}; load average {load()}",
        flush=True,
    )
    rows = [
        (
            "in-process fit (fresh process, 2 threads)",
            f"{data.packed_bytes / MiB:.0f} (all)",
            f"{before / MiB:.0f}",
            f"{peak / MiB:.0f}",
            f"{(peak - before) / MiB:.0f}",
            f"**{in_process_factor:.2f}**",
            "",
            n_iter,
        )
    ]
    for i, worker in enumerate(workers):
        extra = sampler.peaks[i] - rss_before[i]
        rows.append(
            (
                f"worker {i + 1} (cluster fit)",
                f"{share[i] / MiB:.0f}",
                f"{rss_before[i] / MiB:.0f}",
                f"{sampler.peaks[i] / MiB:.0f}",
                f"{extra / MiB:.0f}",
                f"**{extra / share[i]:.2f}**",
                f"{in_process_factor * share[i] / MiB:.0f} / {in_process_factor * data.packed_bytes / MiB:.0f}",
                model.n_iter_ if i == 0 else "",
            )
        )
    print_table(
        "Peak memory (RSS) of a fit; 'before' is with X already in memory (the in-process "
        "NumPy array; the cluster's persisted chunks)",
        [
            "process",
            "packed elements it fits (MiB)",
            "RSS before (MiB)",
            "peak RSS (MiB)",
            "peak - before (MiB)",
            "(peak - before) / packed elements",
            "in-process factor × its share / × all the data (MiB)",
            "n_iter_",
        ],
        rows,
    )
    print(f"RSS after the fit (MiB): {[round(r / MiB) for r in rss_after]}")


def _worker_spills(dask_worker):
    """Writes to disk by this worker's spill buffer (count, bytes) since it started."""
    count = written = 0
    for key, value in getattr(dask_worker, "digests_total", {}).items():
        if isinstance(key, tuple) and "disk-write" in key:
            if key[-1] == "count":
                count += value
            elif key[-1] == "bytes":
                written += value
    return int(count), int(written)


def _chunk_workers(task_stream):
    """Chunk index -> worker that computed it, from a task stream (keys ('concatenate-...', i, ...))."""
    where = {}
    for task in task_stream:
        key = task["key"]
        if isinstance(key, tuple) and str(key[0]).startswith("concatenate"):
            where[int(key[1])] = task["worker"]
    return where


def section_limit(args):
    import dask.config
    import distributed

    data = Data(args.elements, args.limit_chunks)
    limit = int(args.limit_mib * MiB)
    cluster, client = new_cluster(memory_limit=limit)
    error, model = None, estimator(args.limit_iters)
    try:
        # imports only: a warm-up fit would meet the limit before the measured one
        client.run(lambda: __import__("sk_attention._dask"))
        workers = sorted(client.scheduler_info()["workers"])
        pids = client.run(os.getpid)
        pids = [pids[w] for w in workers]
        client.run(gc.collect)
        rss_before = settled_rss(pids)
        X = data.dask_array()  # not persisted: each worker makes and packs its chunks
        with (
            RSSSampler(pids) as sampler,
            distributed.get_task_stream(client) as stream,
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            try:
                model.fit(X, data.y)
            except Exception as exc:  # noqa: BLE001 -- reported in the table
                error = f"{type(exc).__name__}: {str(exc)[:200]}"
            seconds = time.perf_counter() - start
        spills = client.run(_worker_spills)
        logs = client.get_worker_logs()
        nanny_logs = client.get_worker_logs(nanny=True)
        still = sorted(client.scheduler_info()["workers"])
    finally:
        client.close()
        cluster.close()
    thresholds = {
        name: dask.config.get(f"distributed.worker.memory.{name}")
        for name in ("target", "spill", "pause", "terminate")
    }
    share = collections.Counter()
    for chunk, worker in _chunk_workers(stream.data).items():
        share[worker] += data.chunk_elements[chunk] * D * np.dtype(DTYPE).itemsize

    def count(all_logs, text):
        return sum(text in message for lines in all_logs.values() for _, message in lines)

    pauses = count(logs, "Pausing worker")
    restarts = count(nanny_logs, "Restarting")
    print(
        f"\n[limit] {data.describe()}; memory_limit {args.limit_mib:.0f} MiB per worker; "
        f"thresholds {thresholds}; load average {load()}",
        flush=True,
    )
    rows = [
        ("memory_limit per worker", f"{args.limit_mib:.0f} MiB", ""),
        (
            "X: the 3D NaN-padded dask array (`X.nbytes`)",
            f"{data.padded_bytes / MiB:.0f} MiB",
            f"{data.padded_bytes / limit:.2f}",
        ),
        (
            "X's elements, packed (what the fit keeps)",
            f"{data.packed_bytes / MiB:.0f} MiB",
            f"{data.packed_bytes / limit:.2f}",
        ),
        ("fit completed", "yes" if error is None else f"no: {error}", ""),
        (
            "L-BFGS iterations (max_iter)",
            f"{model.n_iter_ if error is None else '-'} ({args.limit_iters})",
            "",
        ),
        ("workers at the end / worker restarts (nanny logs)", f"{len(still)} / {restarts}", ""),
        ('worker pauses ("Pausing worker" in the worker logs)', pauses, ""),
    ]
    for i, worker in enumerate(workers):
        count_, written = spills.get(worker, (0, 0))
        rows.append(
            (
                f"worker {i + 1}: packed elements it fitted",
                f"{share[worker] / MiB:.0f} MiB",
                f"{share[worker] / limit:.2f}",
            )
        )
        rows.append(
            (
                f"worker {i + 1}: RSS before the fit",
                f"{rss_before[i] / MiB:.0f} MiB",
                f"{rss_before[i] / limit:.2f}",
            )
        )
        rows.append(
            (
                f"worker {i + 1}: peak RSS",
                f"{sampler.peaks[i] / MiB:.0f} MiB",
                f"**{sampler.peaks[i] / limit:.2f}**",
            )
        )
        rows.append(
            (
                f"worker {i + 1}: (peak - before) / packed elements it fitted",
                (
                    f"{(sampler.peaks[i] - rss_before[i]) / share[worker]:.2f}"
                    if share[worker]
                    else "-"
                ),
                "",
            )
        )
        rows.append(
            (
                f"worker {i + 1}: spilled to disk (writes / MiB)",
                f"{count_} / {written / MiB:.0f}",
                "",
            )
        )
    what = "exceeds" if data.padded_bytes > limit else "does not exceed (a smoke test)"
    print_table(
        f"A fit whose X {what} one worker's memory_limit ({args.limit_chunks} chunks, "
        "X made by the graph on the workers, never persisted; "
        + (
            f"fit time / iteration {seconds / model.n_iter_:.2f} s in this run)"
            if error is None
            else f"the fit failed after {seconds:.0f} s)"
        ),
        ["measurement", "value", "/ memory_limit"],
        rows,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default="time,bytes,memory,limit")
    parser.add_argument("--forms", default="array,bag", help="inputs of the time section")
    parser.add_argument("--elements", type=int, default=2_000_000)
    parser.add_argument("--small-elements", type=int, default=500_000)
    parser.add_argument("--chunks", type=int, default=4, help="partitions of X (2 per worker)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--bytes-iters", type=int, default=5)
    parser.add_argument("--memory-iters", type=int, default=3)
    parser.add_argument("--limit-iters", type=int, default=10)
    parser.add_argument(
        "--limit-mib",
        type=float,
        default=None,
        help="workers' memory_limit (default: 0.95 x X.nbytes; --quick: 400)",
    )
    parser.add_argument("--limit-chunks", type=int, default=8)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    args.command = "python benchmarks/distributed.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    if args.quick:
        args.elements, args.small_elements, args.repeats, args.iters = 200_000, 50_000, 2, 5
        args.bytes_iters, args.memory_iters, args.limit_iters = 3, 2, 3
    if args.limit_mib is None:
        # quick: X is far smaller than a worker's libraries (~170 MiB), only a smoke test
        args.limit_mib = (
            400 if args.quick else 0.95 * Data(args.elements, args.limit_chunks).padded_bytes / MiB
        )

    import dask
    import distributed
    import sklearn

    import sk_attention

    print(f"sk_attention distributed benchmark  (command: {args.command})")
    print(
        f"numpy {np.__version__}, scikit-learn {sklearn.__version__}, dask {dask.__version__}, "
        f"distributed {distributed.__version__}, sk_attention {sk_attention.__version__}; "
        f"{os.cpu_count()} cores; load average {load()}",
        flush=True,
    )
    sections = args.sections.split(",")
    start = time.perf_counter()
    if "time" in sections or "bytes" in sections:
        cluster, client = new_cluster()
        try:
            warm_up(client)
            if "time" in sections:
                section_time(args, client)
            if "bytes" in sections:
                section_bytes(args, client)
        finally:
            client.close()
            cluster.close()
    if "memory" in sections:
        section_memory(args)
    if "limit" in sections:
        section_limit(args)
    print(f"\n(total {time.perf_counter() - start:.0f} s; load average {load()})")


if __name__ == "__main__":
    main()
