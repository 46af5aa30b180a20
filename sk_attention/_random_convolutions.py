"""RandomConvolutions: describe every step by random dilated kernels around it.

The math, on packed elements (all steps of all samples stacked, see
``_collections.py``), for kernel ``k`` of length ``L``, dilation ``d`` and
weights ``w`` (``L`` taps x channels), at step ``t`` of a sample ``x`` of
``T`` steps whose channels were standardised with the training mean and
standard deviation::

    r_t  = sum_j w_j . x[t + (j - (L - 1) / 2) d]     x[s] = 0 outside 0..T-1
    p_t  = 1 if r_t > b else 0                         b: a training quantile of r
    f_t  = mean of p over the steps s of the sample with |s - t| <= h
    h    = max((L - 1) / 2 * d, round(window * T))

``f_t`` is what the transformer outputs: ROCKET's "proportion of positive
values", taken over a neighbourhood of the step instead of the whole series.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._collection_transformer import CollectionTransformer
from ._collections import check_collections, gen_sample_chunks, step_positions
from ._compat import Interval, check_feature_names_in

__all__ = ["RandomConvolutions"]

KERNEL_LENGTHS = (7, 9, 11)
MAX_CHANNELS = 9  # channels one kernel reads at most, as in MiniRocket
# A response counts as positive when it exceeds the bias by more than this
# times the kernel's L1 norm: more than float32 rounding of a response.
# Without it, responses that equal the bias (the training sample's own
# quantile, or a zero-sum kernel over a flat stretch) would flip with the
# rounding of the product, i.e. with the other samples in the batch.
TIE_TOLERANCE = 1e-4
TAPS = max(KERNEL_LENGTHS)  # every kernel is stored as this many taps, centred
CHUNK_MIB = 4  # working memory of one chunk of samples: about a CPU cache


def draw_kernels(rng, n_kernels, n_channels, reference_length):
    """Lengths, dilations and weights of ``n_kernels`` random kernels.

    As in ROCKET (Dempster, Petitjean & Webb 2020): lengths from {7, 9, 11},
    normal weights, dilation ``floor(2 ** U(0, A))`` with ``A`` chosen so
    that the kernel's span ``(length - 1) * dilation + 1`` stays within
    ``reference_length``.  As in MiniRocket's multivariate variant, a kernel
    reads ``floor(2 ** U(0, log2(min(n_channels, 9) + 1)))`` random
    channels.  Each kernel's weights (over its taps and channels) sum to
    zero.

    Returns
    -------
    lengths, dilations : ndarray of shape (n_kernels,), dtype int64
    weights : ndarray of shape (n_kernels, TAPS, n_channels)
        Tap ``j`` of every kernel reads step ``t + (j - TAPS // 2) * dilation``:
        a kernel of length ``L`` has its weights in the middle ``L`` taps and
        zeros in the others, as in the channels it does not read.
    """
    lengths = rng.choice(KERNEL_LENGTHS, n_kernels).astype(np.int64)
    room = max(reference_length - 1, 1) / (lengths - 1)
    dilations = np.floor(2 ** rng.uniform(0, np.log2(np.maximum(room, 1.0)))).astype(np.int64)
    most = min(n_channels, MAX_CHANNELS)
    n_read = np.floor(2 ** rng.uniform(0, np.log2(most + 1), size=n_kernels)).astype(np.int64)
    n_read = np.clip(n_read, 1, most)
    weights = np.zeros((n_kernels, TAPS, n_channels))
    for k in range(n_kernels):
        channels = rng.choice(n_channels, n_read[k], replace=False)
        w = rng.normal(size=(lengths[k], n_read[k]))
        first = (TAPS - lengths[k]) // 2
        weights[k, first : first + lengths[k], channels] = (w - w.mean()).T
    return lengths, dilations, weights


def dilation_groups(dilations):
    """``(start, stop)`` of the runs of consecutive kernels sharing a dilation."""
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(dilations)) + 1, [len(dilations)]])
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))


def _gapped(elements, offsets, halo):
    """The elements with ``halo`` rows of zeros before, between and after the samples.

    Returns the array and the row of every element in it: a tap up to
    ``halo`` steps away then reads zeros beyond a sample's ends, never a
    neighbouring sample.
    """
    n_samples = len(offsets) - 1
    rows = np.arange(offsets[-1]) + halo * (1 + np.repeat(np.arange(n_samples), np.diff(offsets)))
    gapped = np.zeros((offsets[-1] + halo * (n_samples + 1), elements.shape[1]), elements.dtype)
    gapped[rows] = elements
    return gapped, rows


def convolve(elements, offsets, weights, dilation):
    """Responses of kernels of one dilation at every packed step.

    Parameters
    ----------
    elements : ndarray of shape (n_elements_total, n_channels)
        Packed steps, channels standardised (so zero is the channel's mean).
    offsets : ndarray of shape (n_samples + 1,)
        Sample ``i`` owns ``elements[offsets[i]:offsets[i + 1]]``.
    weights : ndarray of shape (n_kernels, n_taps, n_channels)
        ``n_taps`` odd; tap ``j`` reads ``(j - n_taps // 2) * dilation``
        steps away from the step.
    dilation : int
        Steps between two taps.

    Returns
    -------
    responses : ndarray of shape (n_elements_total, n_kernels), dtype of ``elements``
        ``sum_j weights[k, j] . x[t + (j - n_taps // 2) * dilation]``,
        where a tap beyond the sample's ends reads zeros: it never reads a
        neighbouring sample.

    Notes
    -----
    Whole samples are taken in chunks of about ``CHUNK_MIB``, with zeros
    between them; in each chunk the values under every tap form one
    ``(rows, n_taps * n_channels)`` matrix (im2col, one slice per tap) and
    one product with the flattened kernels gives all responses.  The work
    is linear in the number of steps and no Python loop runs over samples.
    """
    n_kernels, n_taps, n_channels = weights.shape
    dtype = elements.dtype
    halo = n_taps // 2 * dilation
    flat = weights.reshape(n_kernels, -1).T.astype(dtype)  # (n_taps * n_channels, n_kernels)
    out = np.empty((elements.shape[0], n_kernels), dtype=dtype)
    row_bytes = (n_taps * n_channels + n_kernels) * dtype.itemsize
    for chunk in gen_sample_chunks(offsets, row_bytes, halo * row_bytes, CHUNK_MIB):
        first, last = offsets[chunk.start], offsets[chunk.stop]
        gapped, rows = _gapped(
            elements[first:last], offsets[chunk.start : chunk.stop + 1] - first, halo
        )
        n_rows = gapped.shape[0] - 2 * halo
        taps = np.empty((n_rows, n_taps, n_channels), dtype=dtype)
        for j in range(n_taps):
            shift = halo + (j - n_taps // 2) * dilation
            taps[:, j] = gapped[shift : shift + n_rows]
        out[first:last] = (taps.reshape(n_rows, -1) @ flat)[rows - halo]
    return out


def local_proportions(above, t, T, half_width):
    """Share of True in a window around every step, within its sample.

    Parameters
    ----------
    above : ndarray of shape (n_elements_total, n_kernels) of bool
        One row per packed step, samples one after the other.
    t, T : ndarray of shape (n_elements_total,) of int
        Each step's index in its sample, and the sample's length
        (:func:`~sk_attention._collections.step_positions`).
    half_width : int
        The window of step ``t`` is ``t - half_width .. t + half_width``,
        cut at the sample's ends.

    Returns
    -------
    proportions : ndarray of shape (n_elements_total, n_kernels), float64
        The mean of ``above`` over each step's window.
    """
    if half_width >= T.max() - 1:
        # every window is the whole sample: one sum per sample
        starts = np.flatnonzero(t == 0)
        lengths = T[starts]
        shares = np.add.reduceat(above, starts, axis=0, dtype=np.int64) / lengths[:, None]
        return np.repeat(shares, lengths, axis=0)
    row = np.arange(len(t))
    lo = row - np.minimum(t, half_width)
    hi = row + np.minimum(T - 1 - t, half_width) + 1
    # integer counts: a float cumulative sum would lose steps on long inputs
    counts = np.zeros((above.shape[0] + 1, above.shape[1]), dtype=np.int64)
    np.cumsum(above, axis=0, out=counts[1:])
    return (counts[hi] - counts[lo]) / (hi - lo)[:, None]


class RandomConvolutions(CollectionTransformer, auto_wrap_output_keys=("transform",)):
    """Describe every step of a sequence by random dilated kernels around it.

    Attention weighs and pools elements; in a univariate series an element
    is one number, which says little on its own.  This step gives every
    element of a sequence (3D input or a ragged list, in time order) what
    ``n_kernels`` random dilated convolution kernels see around it: the
    kernels of ROCKET (Dempster, Petitjean & Webb 2020) and, for several
    channels, of MiniRocket's multivariate variant, drawn once in ``fit``.
    For kernel ``k`` at step ``t`` the output is the share of steps, in a
    window around ``t``, where the kernel's response exceeds its bias:
    ROCKET's "proportion of positive values" (PPV), taken locally.  So
    attention that weighs the steps uniformly pools exactly ROCKET's PPV
    features, and attention that weighs some stretch more says where the
    series differed.

    The output has ``n_kernels`` floats per step (after the input features
    when ``keep_input=True``): ``n_kernels`` times the memory of a
    univariate input.

    Parameters
    ----------
    n_kernels : int, default=200
        Number of kernels, hence of output features per step.
    keep_input : bool, default=True
        Whether the element's own features come first in the output.
    window : float, default=16
        Half-width of the window over which each kernel's positive
        responses are counted, in multiples of the kernel's half-span
        ``(length - 1) // 2 * dilation``; the window is cut at the
        sample's ends.  0 gives every step its own 0/1 indicator; large
        values give every step the whole sample's proportion.
    random_state : int, RandomState instance or None, default=None
        Draws the kernels (lengths, dilations, channels, weights) and the
        training quantiles that set their biases.

    Attributes
    ----------
    lengths_ : ndarray of shape (n_kernels,)
        Number of taps of every kernel: 7, 9 or 11.
    dilations_ : ndarray of shape (n_kernels,)
        Steps between two taps, ``floor(2 ** U(0, A))`` with ``A`` such that
        a kernel spans at most the median training length.  Kernels are
        numbered by dilation, then length.
    weights_ : ndarray of shape (n_kernels, 11, n_features_in_)
        Tap ``j`` of kernel ``k`` reads the step ``(j - 5) * dilations_[k]``
        steps away: a kernel's ``lengths_[k]`` weights sit in the middle
        taps, the other taps and the channels it does not read are zero.
        Each kernel reads 1 to ``min(n_features_in_, 9)`` channels and its
        weights sum to zero.
    biases_ : ndarray of shape (n_kernels,)
        A response above ``biases_[k]`` counts as positive: a random
        quantile of kernel ``k``'s responses on one random training sample.
    mean_, scale_ : ndarray of shape (n_features_in_,)
        Each channel is standardised with these (the training elements'
        mean and standard deviation) before the kernels read it, so that
        kernels mixing channels are not ruled by the widest one.
    n_features_in_ : int
        Number of features (channels) of one input element.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features, when X (or its samples) had string column names.

    See Also
    --------
    PositionalEncoding : Tell attention where each step sits.
    ElementwiseTransformer : Scale the steps' features before attention.

    Notes
    -----
    For kernel ``k`` of length ``L``, dilation ``d``, weights ``w`` and bias
    ``b``, at step ``t`` of a sample of ``T`` steps with standardised
    channels ``x``::

        r_t = sum_j w_j . x[t + (j - (L - 1) / 2) d]     (x = 0 beyond the ends)
        f_t = share of s with |s - t| <= h, 0 <= s < T, where r_s > b + tol
        h   = round(window * (L - 1) / 2 * d)
        tol = 1e-4 * sum |w|

    ``tol`` keeps a response equal to the bias up to rounding (the training
    sample's own quantile, or a kernel over a flat stretch, where the
    zero-sum weights give 0) from counting as positive in one batch and not
    in another.

    A tap beyond a sample's ends reads the channel's training mean (0 after
    standardising), and as a kernel's weights sum to zero, such taps add
    nothing: near the ends and on a sample shorter than the kernel, the
    response is made of the real steps only, and the bias, a quantile of
    real responses, does not move with the padding.  Dilations are bounded
    by the median training length, so on typical samples the kernels fit.

    The responses are computed with one matrix product per block of steps
    and per group of kernels sharing a length and a dilation, and the
    windows with one cumulative sum, so the cost is linear in the total
    number of steps.  A NaN-padded 3D array and the ragged list of the
    same samples give the same output; padding stays padding.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_attention import RandomConvolutions
    >>> rng = np.random.RandomState(0)
    >>> series = [rng.normal(size=(30, 1)), rng.normal(size=(12, 1))]
    >>> convolutions = RandomConvolutions(n_kernels=3, random_state=0).fit(series)
    >>> convolutions.get_feature_names_out().tolist()
    ['x0', 'conv0', 'conv1', 'conv2']
    >>> out = convolutions.transform(series)
    >>> [sample.shape for sample in out]
    [(30, 4), (12, 4)]
    >>> np.round(out[1][:3], 2)  # the step's value, then each kernel's share
    array([[ 0.15,  0.17,  0.83,  0.  ],
           [ 0.38,  0.17,  0.83,  0.  ],
           [-0.89,  0.17,  0.83,  0.  ]])
    """

    _parameter_constraints = {
        "n_kernels": [Interval(Integral, 1, None, closed="left")],
        "keep_input": ["boolean"],
        "window": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, n_kernels=200, keep_input=True, window=16, random_state=None):
        self.n_kernels = n_kernels
        self.keep_input = keep_input
        self.window = window
        self.random_state = random_state

    def fit(self, X, y=None):
        """Draw the kernels and set their biases from the training sequences.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), ndarray of shape \
                (n_samples, n_steps, n_features), or list of array-likes
            Sequences in any form of the data model, in time order.
        y : None
            Ignored.

        Returns
        -------
        self : RandomConvolutions
            Fitted transformer.
        """
        self._validate_params()
        packed = check_collections(X, estimator=self, reset=True)
        rng = check_random_state(self.random_state)
        elements = packed.elements
        self.mean_ = elements.mean(axis=0, dtype=np.float64)
        scale = elements.std(axis=0, dtype=np.float64)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        reference = float(np.median(packed.lengths))
        lengths, dilations, weights = draw_kernels(
            rng, self.n_kernels, elements.shape[1], reference
        )
        order = np.lexsort((lengths, dilations))
        self.lengths_, self.dilations_ = lengths[order], dilations[order]
        self.weights_ = weights[order]
        self.biases_ = self._draw_biases(packed, rng)
        return self

    def _draw_biases(self, packed, rng):
        """A random quantile of each kernel's responses on one random training sample."""
        sample = rng.randint(packed.n_samples, size=self.n_kernels)
        quantile = rng.uniform(0, 1, size=self.n_kernels)
        chosen, which = np.unique(sample, return_inverse=True)
        starts, stops = packed.offsets[chosen], packed.offsets[chosen + 1]
        elements = np.concatenate([packed.elements[a:b] for a, b in zip(starts, stops)])
        offsets = np.concatenate([[0], np.cumsum(stops - starts)])
        biases = np.empty(self.n_kernels)
        for start, _, responses in self._responses(elements, offsets):
            for k, column in enumerate(responses.T, start=start):
                own = column[offsets[which[k]] : offsets[which[k] + 1]]
                biases[k] = np.quantile(own, quantile[k])
        return biases

    def _responses(self, elements, offsets):
        """Yield ``(start, stop, responses)`` for every group of kernels.

        The kernels ``start:stop`` share a dilation; their responses at
        every packed step have shape ``(n_elements_total, stop - start)``
        and the dtype of ``elements``.
        """
        dtype = elements.dtype
        x = (elements - self.mean_.astype(dtype)) / self.scale_.astype(dtype)
        for start, stop in dilation_groups(self.dilations_):
            # only the taps the group's longest kernel uses
            unused = (TAPS - self.lengths_[start:stop].max()) // 2
            weights = self.weights_[start:stop, unused : TAPS - unused]
            yield start, stop, convolve(x, offsets, weights, int(self.dilations_[start]))

    def _transform_elements(self, packed):
        elements = packed.elements
        n_input = elements.shape[1] if self.keep_input else 0
        out = np.empty((elements.shape[0], n_input + self.n_kernels), dtype=elements.dtype)
        out[:, :n_input] = elements[:, :n_input]
        features = out[:, n_input:]
        # "above the bias" means above it by more than rounding noise
        thresholds = self.biases_ + TIE_TOLERANCE * np.abs(self.weights_).sum(axis=(1, 2))
        half_widths = np.round(
            self.window * ((self.lengths_ - 1) // 2 * self.dilations_)
        ).astype(np.int64)
        t, T = step_positions(packed.offsets)
        for start, stop, responses in self._responses(elements, packed.offsets):
            above = responses > thresholds[start:stop].astype(elements.dtype)
            # kernels are sorted by length within a dilation: runs of one width
            widths = half_widths[start:stop]
            bounds = np.concatenate([[0], np.flatnonzero(np.diff(widths)) + 1, [len(widths)]])
            for a, b in zip(bounds[:-1], bounds[1:]):
                features[:, start + a : start + b] = local_proportions(
                    above[:, a:b], t, T, int(widths[a])
                )
        return out

    def get_feature_names_out(self, input_features=None):
        """Input feature names (with ``keep_input=True``), then ``conv0``, ``conv1``, ...

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Names of the element features; defaults to ``feature_names_in_``
            or ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str objects
            The input names when ``keep_input=True``, then one name per kernel.
        """
        check_is_fitted(self)
        names = list(check_feature_names_in(self, input_features))
        if not self.keep_input:
            names = []
        names += [f"conv{k}" for k in range(self.n_kernels)]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
