"""Speed and memory benchmark of sk_attention (issue 4).

Everything is reported as ratios measured in the same run, never as single
absolute times: the machine is shared and noisy.  Each timing is the median
of ``--repeats`` interleaved runs.

    pip install -e ".[bench]"
    python benchmarks/speed.py                 # full table (a few minutes)
    python benchmarks/speed.py --quick         # smaller sizes, fewer repeats
    python benchmarks/speed.py --threads 2     # BLAS / torch threads

Sections
--------
fit      time per L-BFGS iteration (and per gradient evaluation) of
         AttentionClassifier on ragged bags, against the *matmul bound*:
         numpy's time for the three products one gradient evaluation cannot
         avoid on the packed elements (forward ``P @ W``, backward
         ``G @ W.T`` and ``P.T @ G``, W of shape (D, K * H)); and against the
         same model written in PyTorch (same data, same initial parameters,
         full-batch L-BFGS, same iteration count), both with torch's own
         ``torch.optim.LBFGS`` and with torch's gradient inside scipy's
         L-BFGS-B (the same optimizer as ours).
embedding  the same with ``embedding_size=32``: time per iteration against
         no embedding, against the matmul bound of the products it needs,
         and against the same model in PyTorch.
scaling  time per iteration and peak extra memory (tracemalloc) as the total
         number of elements grows 10x and 100x; ragged input against the same
         data NaN-padded to the longest bag; float32 against float64.
long     peak extra fit memory when all elements form one sample (fitted in
         pieces) against the same elements in 50-element bags.
predict  predict_proba / transform throughput (elements per second, as a
         ratio to the matmul bound's element rate) and peak extra memory.
convolutions
         RandomConvolutions().fit_transform on a PLAID-sized synthetic set
         (about 350,000 steps of one channel, series of 100-1,300 steps)
         against numpy's time for the same number of multiply-adds as one
         matmul; and the whole pipeline's fit there against
         RidgeClassifierCV on ROCKET's pooled features of the same kernels
         (per kernel: max and proportion of positive values).
"""

import argparse
import gc
import time
import tracemalloc
import warnings

import numpy as np
import sklearn
from threadpoolctl import threadpool_limits

import sk_attention._base as base_module
from sk_attention import AttentionClassifier, AttentionPooling
from sk_attention._alignments import param_layout
from sk_attention._attention import loss_and_gradient
from sk_attention._base import _init_params, _pack, _unpack
from sk_attention._segments import Segments
from sk_attention._workspace import Workspace

D, H, K = 32, 16, 4
ALPHA = 0.1


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------


def make_bags(n_bags, seed=0, dtype=np.float64, min_len=5, max_len=35):
    """Ragged bags of ``min_len..max_len`` elements; label: some element has x0 > 2."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_len, max_len + 1, size=n_bags)
    packed = rng.standard_normal((int(lengths.sum()), D)).astype(dtype)
    bags = np.split(packed, np.cumsum(lengths)[:-1])
    y = np.array([int(b[:, 0].max() > 2.0) for b in bags])
    return bags, y


def pad(bags):
    T = max(len(b) for b in bags)
    out = np.full((len(bags), T, D), np.nan, dtype=bags[0].dtype)
    for i, b in enumerate(bags):
        out[i, : len(b)] = b
    return out


def n_elements(bags):
    return sum(len(b) for b in bags)


# --------------------------------------------------------------------------
# timing helpers
# --------------------------------------------------------------------------


def timed(fn):
    gc.collect()
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def interleaved(jobs, repeats):
    """Run every job once per round, ``repeats`` rounds; median seconds of each."""
    times = {name: [] for name in jobs}
    extras = {}
    for _ in range(repeats):
        for name, job in jobs.items():
            seconds, extra = job()
            times[name].append(seconds)
            extras[name] = extra
    return {name: float(np.median(t)) for name, t in times.items()}, extras


def matmul_bound(N, dtype, repeats=5, embedding_size=0):
    """numpy's time for the products one gradient evaluation cannot avoid.

    Without the embedding: ``P @ W``, ``G @ W.T`` and ``P.T @ G`` on the
    (N, D) packed elements, W of shape (D, K * H).  With ``embedding_size``
    M, what attention reads is ``P' = [P, U]`` (N, D + M), and the products
    are ``P @ E`` (the embedding), ``P' @ W``, ``P'.T @ G``, ``G @ W_u.T``
    (the gradient reaching the embedding) and ``P.T @ G_u`` (the
    embedding's gradient).
    """
    rng = np.random.default_rng(1)
    M = embedding_size
    P = rng.standard_normal((N, D)).astype(dtype)
    read = rng.standard_normal((N, D + M)).astype(dtype)
    W = rng.standard_normal((D + M, K * H)).astype(dtype)
    G = rng.standard_normal((N, K * H)).astype(dtype)
    E = rng.standard_normal((D, M)).astype(dtype)
    G_u = rng.standard_normal((N, M)).astype(dtype)
    best = []
    for _ in range(repeats):
        start = time.perf_counter()
        if M:
            P @ E
            read @ W
            read.T @ G
            G @ W[D:].T
            P.T @ G_u
        else:
            P @ W
            G @ W.T
            P.T @ G
        best.append(time.perf_counter() - start)
    return float(np.median(best))


class CountCalls:
    """Counts gradient evaluations of the estimators (patches _base)."""

    def __init__(self):
        self.calls = 0
        self._orig = base_module.loss_and_gradient

    def __enter__(self):
        def counting(*args, **kwargs):
            self.calls += 1
            return self._orig(*args, **kwargs)

        base_module.loss_and_gradient = counting
        return self

    def __exit__(self, *exc):
        base_module.loss_and_gradient = self._orig


def fit_ours(X, y, n_iter, embedding_size=None):
    """Seconds per L-BFGS iteration, iterations, evaluations per iteration."""
    clf = AttentionClassifier(
        max_iter=n_iter, tol=0.0, embedding_size=embedding_size, random_state=0
    )
    with warnings.catch_warnings(), CountCalls() as counter:
        warnings.simplefilter("ignore")
        seconds, _ = timed(lambda: clf.fit(X, y))
    return seconds / clf.n_iter_, (clf.n_iter_, counter.calls / clf.n_iter_)


def peak_memory(fn):
    """Peak bytes allocated by ``fn`` beyond what was allocated before it."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak - before


# --------------------------------------------------------------------------
# the same model in PyTorch
# --------------------------------------------------------------------------


class TorchAttention:
    """Additive attention, K heads, segment softmax per bag, pooled concat,
    linear head, sample-weighted binary log-loss + alpha/2 ||weights||^2 / sum w.
    Written the way a PyTorch user would: index_add_ / scatter_reduce for the
    segment operations, autograd for the gradient."""

    def __init__(self, bags, y, torch, dtype, embedding_size=None):
        self.torch = torch
        self.M = embedding_size or 0
        tdtype = torch.float64 if dtype == np.float64 else torch.float32
        lengths = np.array([len(b) for b in bags])
        self.P = torch.from_numpy(np.concatenate(bags).astype(dtype))
        self.ids = torch.from_numpy(np.repeat(np.arange(len(bags)), lengths))
        self.n = len(bags)
        self.y = torch.tensor(y, dtype=tdtype)
        self.sw = torch.ones(self.n, dtype=tdtype)
        self.layout = param_layout("additive", D, K, H, 1, embedding_size)
        self.dtype, self.tdtype = dtype, tdtype

    def initial(self):
        rng = np.random.RandomState(0)  # AttentionClassifier(random_state=0)
        params = _init_params(self.layout, K, rng, self.dtype)
        return {
            name: self.torch.tensor(value, dtype=self.tdtype, requires_grad=True)
            for name, value in params.items()
        }

    def loss(self, p):
        torch, P, ids, n = self.torch, self.P, self.ids, self.n
        N = P.shape[0]
        if self.M:  # attention reads [x, relu(x E + e)]
            P = torch.cat([P, torch.relu(P @ p["E"] + p["e"])], dim=1)
        D_read = P.shape[1]
        A = torch.tanh(P @ p["W"] + p["b"])  # (N, K*H)
        e = (A.view(N, K, H) * p["v"]).sum(-1)  # (N, K)
        with torch.no_grad():
            m = torch.full((n, K), -torch.inf, dtype=e.dtype).scatter_reduce(
                0, ids[:, None].expand(N, K), e, "amax"
            )
        ex = torch.exp(e - m[ids])
        s = torch.zeros((n, K), dtype=e.dtype).index_add(0, ids, ex)
        a = ex / s[ids]  # (N, K)
        pooled = torch.zeros((n, K * D_read), dtype=e.dtype).index_add(
            0, ids, (a[:, :, None] * P[:, None, :]).reshape(N, K * D_read)
        )
        logits = (pooled @ p["coef"] + p["intercept"])[:, 0]
        per_sample = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, self.y, reduction="none"
        )
        total = self.sw.sum()
        penalty = sum((p[k] ** 2).sum() for k in ("W", "v", "coef") + (("E",) if self.M else ()))
        return (self.sw * per_sample).sum() / total + 0.5 * ALPHA * penalty / total

    def value_and_grad_numpy(self, params_np):
        p = {k: self.torch.tensor(v, dtype=self.tdtype, requires_grad=True) for k, v in params_np.items()}
        value = self.loss(p)
        value.backward()
        return float(value.detach()), {k: t.grad.numpy() for k, t in p.items()}

    def fit_lbfgs(self, n_iter):
        """torch.optim.LBFGS, full batch: seconds per iteration."""
        torch = self.torch
        p = self.initial()
        opt = torch.optim.LBFGS(
            list(p.values()), lr=1, max_iter=n_iter, max_eval=100 * n_iter,
            tolerance_grad=0.0, tolerance_change=0.0, history_size=10,
            line_search_fn="strong_wolfe",
        )
        calls = [0]

        def closure():
            calls[0] += 1
            opt.zero_grad()
            value = self.loss(p)
            value.backward()
            return value

        seconds, _ = timed(lambda: opt.step(closure))
        iters = opt.state[opt._params[0]]["n_iter"]
        return seconds / iters, (iters, calls[0] / iters)

    def fit_scipy(self, n_iter):
        """torch's loss and gradient inside scipy's L-BFGS-B (our optimizer)."""
        from scipy.optimize import minimize

        torch = self.torch
        names = [name for name, _, _ in self.layout]
        theta0 = _pack({k: v.detach().numpy() for k, v in self.initial().items()}, self.layout)
        calls = [0]

        def fun(theta):
            calls[0] += 1
            params = _unpack(theta, self.layout, self.dtype)
            p = {k: torch.from_numpy(np.ascontiguousarray(params[k])).requires_grad_() for k in names}
            value = self.loss(p)
            value.backward()
            return float(value.detach()), np.concatenate([p[k].grad.numpy().ravel() for k in names]).astype(np.float64)

        seconds, result = timed(
            lambda: minimize(fun, theta0, method="L-BFGS-B", jac=True,
                             options={"maxiter": n_iter, "gtol": 0.0, "maxfun": 15000})
        )
        return seconds / result.nit, (result.nit, calls[0] / result.nit)


def same_math_check(model, bags, y):
    """Largest relative difference of loss and gradient, ours vs torch."""
    params = {k: v.detach().numpy().copy() for k, v in model.initial().items()}
    rng = np.random.default_rng(3)  # move off the uniform start
    for name in params:
        params[name] = params[name] + 0.1 * rng.standard_normal(params[name].shape)
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in bags])])
    workspace = Workspace(np.concatenate(bags), Segments(offsets, K))
    ours_v, ours_g = loss_and_gradient(
        params, workspace, "additive", "binary_log_loss", y.astype(np.float64),
        np.ones(len(bags)), ALPHA,
    )
    theirs_v, theirs_g = model.value_and_grad_numpy(params)
    err = abs(ours_v - theirs_v) / abs(theirs_v)
    for name in ours_g:
        err = max(err, np.abs(ours_g[name] - theirs_g[name]).max() / np.abs(theirs_g[name]).max())
    return err


# --------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------


def section_fit(rows, args):
    import torch

    torch.set_num_threads(args.threads)
    bags, y = make_bags(args.bags)
    N = n_elements(bags)
    err = same_math_check(TorchAttention(bags[:200], y[:200], torch, np.float64), bags[:200], y[:200])
    model = TorchAttention(bags, y, torch, np.float64)
    rows.append(("fit", "ours vs torch: same loss and gradient (max rel. diff)", f"{err:.1e}", ""))

    # our iteration count decides torch's
    fit_ours(bags, y, 3)  # warm-up
    _, (n_iter, _) = fit_ours(bags, y, args.iters)
    model.fit_lbfgs(3)
    jobs = {
        "bound": lambda: (matmul_bound(N, np.float64, repeats=1), None),
        "ours": lambda: fit_ours(bags, y, n_iter),
        "torch_lbfgs": lambda: model.fit_lbfgs(n_iter),
        "torch_scipy": lambda: model.fit_scipy(n_iter),
    }
    t, extra = interleaved(jobs, args.repeats)
    ours_iters, ours_evals = extra["ours"]
    rows.append(("fit", f"data: {len(bags)} ragged bags, {N} elements, D={D}, K={K}, H={H}, "
                 f"float64, {args.threads} thread(s), {ours_iters} iterations", "", ""))
    rows.append(("fit", "ours: time per iteration / matmul bound", f"{t['ours'] / t['bound']:.2f}", "<= 3"))
    rows.append(("fit", "ours: time per gradient evaluation / matmul bound",
                 f"{t['ours'] / ours_evals / t['bound']:.2f}", ""))
    rows.append(("fit", f"gradient evaluations per iteration: ours {ours_evals:.2f}, torch.optim.LBFGS "
                 f"{extra['torch_lbfgs'][1]:.2f} ({extra['torch_lbfgs'][0]} it), torch+scipy "
                 f"{extra['torch_scipy'][1]:.2f}", "", ""))
    rows.append(("fit", "torch.optim.LBFGS time per iteration / ours",
                 f"{t['torch_lbfgs'] / t['ours']:.2f}", ">= 1.5"))
    rows.append(("fit", "torch (loss+autograd) in scipy L-BFGS-B, time per iteration / ours",
                 f"{t['torch_scipy'] / t['ours']:.2f}", ">= 1.5"))
    rows.append(("fit", "torch.optim.LBFGS time per gradient evaluation / ours",
                 f"{(t['torch_lbfgs'] / extra['torch_lbfgs'][1]) / (t['ours'] / ours_evals):.2f}", ""))

    # float32 vs float64, ragged vs padded, same data
    bags32 = [b.astype(np.float32) for b in bags]
    padded = pad(bags)
    fit_ours(bags32, y, 3)
    fit_ours(padded, y, 3)
    jobs = {
        "f64": lambda: fit_ours(bags, y, n_iter),
        "f32": lambda: fit_ours(bags32, y, n_iter),
        "padded": lambda: fit_ours(padded, y, n_iter),
    }
    t, extra = interleaved(jobs, 2 * args.repeats)
    rows.append(("fit", "float32 / float64 time per iteration", f"{t['f32'] / t['f64']:.2f}", "< 1"))
    rows.append(("fit", f"ragged / NaN-padded (to {padded.shape[1]} steps) time per iteration",
                 f"{t['f64'] / t['padded']:.2f}", "<= 1"))


def section_embedding(rows, args):
    """``embedding_size=32`` at D=32: against no embedding, its matmul bound and torch."""
    import torch

    torch.set_num_threads(args.threads)
    M = args.embedding_size
    bags, y = make_bags(args.bags)
    N = n_elements(bags)
    err = same_math_check(
        TorchAttention(bags[:200], y[:200], torch, np.float64, M), bags[:200], y[:200]
    )
    rows.append(("embedding", f"embedding_size={M}: ours vs torch, same loss and gradient "
                 "(max rel. diff)", f"{err:.1e}", ""))
    model = TorchAttention(bags, y, torch, np.float64, M)
    fit_ours(bags, y, 3, M)  # warm-up
    _, (n_iter, _) = fit_ours(bags, y, args.iters, M)
    model.fit_lbfgs(3)
    jobs = {
        "bound": lambda: (matmul_bound(N, np.float64, repeats=1, embedding_size=M), None),
        "plain": lambda: fit_ours(bags, y, n_iter),
        "embedded": lambda: fit_ours(bags, y, n_iter, M),
        "torch_lbfgs": lambda: model.fit_lbfgs(n_iter),
        "torch_scipy": lambda: model.fit_scipy(n_iter),
    }
    t, extra = interleaved(jobs, args.repeats)
    evals = extra["embedded"][1]
    rows.append(("embedding", f"data: {len(bags)} ragged bags, {N} elements, D={D}, M={M}, K={K}, "
                 f"H={H}, float64, {args.threads} thread(s), {n_iter} iterations", "", ""))
    rows.append(("embedding", "time per iteration with / without the embedding",
                 f"{t['embedded'] / t['plain']:.2f}", ""))
    rows.append(("embedding", "time per iteration / matmul bound of its products",
                 f"{t['embedded'] / t['bound']:.2f}", "<= 2"))
    rows.append(("embedding", "time per gradient evaluation / matmul bound of its products",
                 f"{t['embedded'] / evals / t['bound']:.2f}", ""))
    rows.append(("embedding", "torch.optim.LBFGS time per iteration / ours",
                 f"{t['torch_lbfgs'] / t['embedded']:.2f}", ">= 3"))
    rows.append(("embedding", "torch (loss+autograd) in scipy L-BFGS-B, time per iteration / ours",
                 f"{t['torch_scipy'] / t['embedded']:.2f}", ">= 3"))


def section_scaling(rows, args):
    # the base size should not fit in the CPU caches, or the first step
    # measures the cache, not the algorithm (see README)
    sizes = [args.scale_bags * f for f in (1, 10, 100)]
    data = [make_bags(n_bags, seed=1) for n_bags in sizes]
    elements = [n_elements(bags) for bags, _ in data]
    iters = max(2, args.scale_iters)

    def marginal(bags, y):
        # time per iteration without the per-fit setup (packing, the
        # workspace, first touch of its pages): difference of two fits.
        # Line searches may take a different number of gradient evaluations
        # at different sizes, so the time per evaluation is reported too.
        short, (n_short, e_short) = fit_ours(bags, y, 1)
        long, (n_long, e_long) = fit_ours(bags, y, 1 + iters)
        extra = long * n_long - short * n_short
        evals = e_long * n_long - e_short * n_short
        return extra / (n_long - n_short), (short * n_short, extra / evals, evals / (n_long - n_short))

    for bags, y in data:
        fit_ours(bags, y, 1)  # warm-up
    rounds = {i: [] for i in range(len(data))}

    def job(i):
        seconds, extra = marginal(*data[i])
        rounds[i].append(extra)
        return seconds, extra

    t, _ = interleaved({i: (lambda i=i: job(i)) for i in range(len(data))}, args.scale_repeats)
    per_iter = [t[i] for i in range(len(data))]
    # medians over the rounds: whole 1-iteration fit, marginal time per
    # evaluation, evaluations per marginal iteration
    one_iter, per_marginal_eval, evals_per_iter = (
        [float(np.median([r[j] for r in rounds[i]])) for i in range(len(data))] for j in range(3)
    )
    # steady-state gradient evaluation, the core of an iteration: best of 3
    # after a first (page-touching) call, on the fit's own workspace
    from sklearn.base import BaseEstimator

    from sk_attention._collections import check_collections

    per_eval = []
    for bags, y in data:
        packed = check_collections(bags, estimator=BaseEstimator(), reset=True)
        segments = Segments(packed.offsets, K)
        workspace = Workspace(packed.elements, segments)
        del packed
        params = _init_params(param_layout("additive", D, K, H, 1), K, np.random.RandomState(0))
        params["v"] += 0.1
        weights = np.ones(len(bags))

        def evaluate():
            return loss_and_gradient(params, workspace, "additive", "binary_log_loss",
                                     y.astype(np.float64), weights, ALPHA)

        evaluate()
        per_eval.append(min(timed(evaluate)[0] for _ in range(3)))
        del workspace
        gc.collect()

    memory = []
    for bags, y in data:
        clf = AttentionClassifier(max_iter=2, tol=0.0, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            memory.append(peak_memory(lambda: clf.fit(bags, y)))
    del data
    gc.collect()
    input_bytes = [N * D * 8 for N in elements]
    for i, f in ((1, 10), (2, 100)):
        growth = elements[i] / elements[0]
        rows.append(("scaling", f"{f}x bags ({elements[i]} vs {elements[0]} elements = {growth:.1f}x): "
                     "time per iteration ratio (marginal: fit(1 + k it) - fit(1 it))", f"{per_iter[i] / per_iter[0]:.1f}",
                     f"<= {1.1 * growth:.1f}"))
        rows.append(("scaling", f"{f}x bags: marginal time per gradient evaluation ratio (evaluations "
                     f"per iteration: {evals_per_iter[0]:.2f} vs {evals_per_iter[i]:.2f})",
                     f"{per_marginal_eval[i] / per_marginal_eval[0]:.1f}", f"<= {1.1 * growth:.1f}"))
        rows.append(("scaling", f"{f}x bags: steady-state gradient evaluation time ratio (best of 3)",
                     f"{per_eval[i] / per_eval[0]:.1f}", f"<= {1.1 * growth:.1f}"))
        rows.append(("scaling", f"{f}x bags: whole 1-iteration fit (packing, workspace setup, first "
                     "touch of its pages included) time ratio",
                     f"{one_iter[i] / one_iter[0]:.1f}", ""))
        rows.append(("scaling", f"{f}x bags: peak fit memory ratio",
                     f"{memory[i] / memory[0]:.1f}", f"~{growth:.0f}"))
    for N, mem, ib in zip(elements, memory, input_bytes):
        rows.append(("scaling", f"{N} elements: peak extra fit memory / packed input size",
                     f"{mem / ib:.2f}", "constant"))


def section_long(rows, args):
    """Peak fit memory with one very long sample against the same elements in short bags."""
    rng = np.random.default_rng(5)
    elements = rng.standard_normal((args.long_elements, 16))
    data_bytes = elements.nbytes
    cases = {
        "one sample": [elements],
        "50-element bags": np.split(elements, args.long_elements // 50),
    }
    for name, bags in cases.items():
        y = np.arange(len(bags)) % 2 if len(bags) > 1 else np.array([0])
        if len(bags) == 1:  # a classifier needs two classes: a second, short bag
            bags, y = bags + [elements[:50]], np.array([0, 1])
        clf = AttentionClassifier(max_iter=2, tol=0.0, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            peak = peak_memory(lambda: clf.fit(bags, y))
        rows.append(("long", f"{args.long_elements} x 16 elements as {name}: peak extra fit "
                     f"memory / data size ({peak / 2**20:.0f} MiB)", f"{peak / data_bytes:.2f}", "~2"))


def section_predict(rows, args):
    bags, y = make_bags(args.bags, seed=2)
    clf = AttentionClassifier(max_iter=5, random_state=0)
    pool = AttentionPooling(max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(bags, y)
        pool.fit(bags, y)
    big, _ = make_bags(args.predict_bags, seed=4)
    N = n_elements(big)
    input_bytes = N * D * 8
    clf.predict_proba(big[:1000])
    jobs = {
        "bound": lambda: (matmul_bound(N, np.float64, repeats=1), None),
        "predict_proba": lambda: timed(lambda: clf.predict_proba(big)),
        "transform": lambda: timed(lambda: pool.transform(big)),
    }
    t, _ = interleaved(jobs, args.repeats)
    # the bound's three products cover one gradient evaluation; inference
    # needs only the first, so compare to a third of it
    for name in ("predict_proba", "transform"):
        rows.append(("predict", f"{name} on {len(big)} bags / {N} elements: time / (P @ W time, "
                     "1/3 of the bound)", f"{t[name] / (t['bound'] / 3):.2f}", ""))
        rows.append(("predict", f"{name}: elements per second (this run; ratio above is the portable number)",
                     f"{N / t[name]:.3g}", ""))
    # inference runs the fit's forward block by block: beyond the validated
    # copy of X and the result, one block of work arrays per thread
    for name, fn in (("predict_proba", lambda: clf.predict_proba(big)),
                     ("transform", lambda: pool.transform(big))):
        mem = peak_memory(fn)
        rows.append(("predict", f"{name}: peak extra memory / input size "
                     f"({mem / 2**20:.0f} MiB)", f"{mem / input_bytes:.2f}", "~1"))


def make_series(n_steps, seed=0, n_classes=11, min_len=100, max_len=1300):
    """Univariate series of 100-1,300 steps, ``n_steps`` in all, one class each.

    Class c: a burst (80 steps, amplitude 0.8) of a sine of frequency
    0.02 * (c + 1) per step at a random place, in unit noise; every series
    z-normalised (as PLAID's are).
    """
    rng = np.random.default_rng(seed)
    lengths = []
    while sum(lengths) < n_steps:
        lengths.append(int(rng.integers(min_len, max_len + 1)))
    y = np.arange(len(lengths)) % n_classes
    series = []
    for T, c in zip(lengths, y):
        x = rng.standard_normal(T)
        burst = min(T // 2, 80)
        at = rng.integers(0, T - burst + 1)
        x[at : at + burst] += 0.8 * np.sin(2 * np.pi * 0.02 * (c + 1) * np.arange(burst))
        series.append(((x - x.mean()) / x.std())[:, None])
    return series, y


def rocket_pooled(model, series):
    """Per kernel, ROCKET's two numbers: the max response and the share above the bias."""
    from sk_attention._collections import check_collections

    packed = check_collections(series, estimator=model, reset=False)
    starts = packed.offsets[:-1]
    features = []
    for start, stop, responses in model._responses(packed.elements, packed.offsets):
        above = responses > model.biases_[start:stop]
        lengths = np.diff(packed.offsets)[:, None]
        features += [np.maximum.reduceat(responses, starts, axis=0),
                     np.add.reduceat(above, starts, axis=0) / lengths]
    return np.hstack(features)


def section_convolutions(rows, args):
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sk_attention import ElementwiseTransformer, PositionalEncoding, RandomConvolutions

    series, y = make_series(args.conv_steps)
    N = n_elements(series)
    model = RandomConvolutions(random_state=0)
    model.fit(series[:50])  # warm-up
    jobs = {"fit_transform": lambda: timed(lambda: RandomConvolutions(random_state=0).fit_transform(series))}
    model.fit(series)
    K = model.n_kernels
    taps = int(model.lengths_.sum())  # one channel: multiply-adds per step
    width = int(round(taps / K))
    rng = np.random.default_rng(3)
    A, B = rng.standard_normal((N, width)), rng.standard_normal((width, K))
    side = int(round((N * taps) ** (1 / 3)))
    S = rng.standard_normal((side, side))
    jobs["im2col matmul"] = lambda: timed(lambda: A @ B)
    jobs["square matmul"] = lambda: timed(lambda: S @ S)
    t, _ = interleaved(jobs, args.repeats)
    rows.append(("convolutions", f"data: {len(series)} series of 100-1300 steps, {N} steps, "
                 f"1 channel, {K} kernels ({taps} taps), float64, {args.threads} thread(s)", "", ""))
    rows.append(("convolutions", f"RandomConvolutions().fit_transform / ({N}, {width}) @ ({width}, {K}) "
                 "matmul (same multiply-adds, im2col shape)",
                 f"{t['fit_transform'] / t['im2col matmul']:.1f}", ""))
    rows.append(("convolutions", f"RandomConvolutions().fit_transform / ({side}, {side}) @ ({side}, {side}) "
                 "matmul (same multiply-adds)", f"{t['fit_transform'] / t['square matmul']:.1f}", ""))
    rows.append(("convolutions", "RandomConvolutions().fit_transform: ns per step and kernel "
                 "(this run; the ratios above are the portable numbers)",
                 f"{t['fit_transform'] / (N * K) * 1e9:.2f}", ""))

    X_tr, X_te, y_tr, y_te = train_test_split(series, y, test_size=0.5, random_state=0, stratify=y)
    pipeline = make_pipeline(RandomConvolutions(random_state=0), ElementwiseTransformer(StandardScaler()),
                             PositionalEncoding(), AttentionClassifier(random_state=0))

    def rocket():
        kernels = RandomConvolutions(keep_input=False, random_state=0).fit(X_tr)
        ridge = make_pipeline(StandardScaler(), RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)))
        ridge.fit(rocket_pooled(kernels, X_tr), y_tr)
        return kernels, ridge

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seconds_pipeline, _ = timed(lambda: pipeline.fit(X_tr, y_tr))
    t, extra = interleaved({"rocket": lambda: timed(rocket)}, args.repeats)
    kernels, ridge = extra["rocket"]
    acc_rocket = ridge.score(rocket_pooled(kernels, X_te), y_te)
    rows.append(("convolutions", f"pipeline fit (RandomConvolutions, scaler, PositionalEncoding, "
                 f"AttentionClassifier; {n_elements(X_tr)} training steps, {pipeline[-1].n_iter_} iterations) "
                 "/ RidgeClassifierCV on ROCKET's pooled features (max, PPV) of the same kernels, "
                 "kernels and pooling included", f"{seconds_pipeline / t['rocket']:.0f}", ""))
    rows.append(("convolutions", "test accuracy on the other half: pipeline / ridge",
                 f"{pipeline.score(X_te, y_te):.3f} / {acc_rocket:.3f}", ""))


def print_table(rows, args):
    print(f"\nsk_attention speed benchmark  (command: {args.command})")
    print(f"numpy {np.__version__}, scikit-learn {sklearn.__version__}, threads={args.threads}\n")
    print("| section | measurement | value | target |")
    print("|---|---|---|---|")
    for section, what, value, target in rows:
        print(f"| {section} | {what} | {value} | {target} |")


def main(argv=None):
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--bags", type=int, default=4000)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--scale-bags", type=int, default=3000)
    parser.add_argument("--scale-iters", type=int, default=10)
    parser.add_argument("--scale-repeats", type=int, default=3)
    parser.add_argument("--predict-bags", type=int, default=100_000)
    parser.add_argument("--long-elements", type=int, default=1_000_000)
    parser.add_argument("--embedding-size", type=int, default=32)
    parser.add_argument("--conv-steps", type=int, default=350_000)
    parser.add_argument("--sections", default="fit,embedding,scaling,long,predict,convolutions")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    args.command = "python benchmarks/speed.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.quick:
        args.repeats, args.bags, args.iters = 3, 1000, 10
        args.scale_bags, args.predict_bags, args.long_elements = 200, 20_000, 100_000
        args.conv_steps = 35_000
    rows = []
    with threadpool_limits(args.threads):
        for section in args.sections.split(","):
            globals()[f"section_{section}"](rows, args)
            print_table(rows, args) if section == args.sections.split(",")[-1] else None
    return rows


if __name__ == "__main__":
    main()
