"""Pictures of attention weights, following scikit-learn's Display API.

matplotlib is an optional dependency (``pip install "sk_attention[plot]"``):
importing this module never needs it, only drawing does.
"""

from numbers import Integral

import numpy as np

from ._collections import _sample_list
from ._inspection import attention_estimator, attention_weights

__all__ = ["AttentionDisplay"]

_HIGHLIGHT_COLOR = "tab:orange"
_BAR_COLOR = "tab:blue"


def _import_pyplot():
    """matplotlib.pyplot, or an ImportError that names the extra to install."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "AttentionDisplay needs matplotlib, an optional dependency of "
            'sk_attention. Install it with: pip install "sk_attention[plot]" '
            "(or pip install matplotlib)."
        ) from exc
    return plt


def _n_samples(X):
    samples = _sample_list(X)
    if samples is not None:
        return len(samples)
    return len(X) if not hasattr(X, "shape") else X.shape[0]


def _one_sample(X, sample):
    """``(sample_as_collection_of_one, raw_elements, real_mask)``.

    ``real_mask`` marks the non-padding elements (3D input pads with all-NaN
    elements); the first item keeps X's form so it can go through a Pipeline.
    """
    n_samples = _n_samples(X)
    if not (isinstance(sample, Integral) and -n_samples <= sample < n_samples):
        raise ValueError(
            f"sample={sample!r} is out of range: X holds {n_samples} samples, "
            f"so sample must be an int in [0, {n_samples})."
        )
    sample = int(sample) % n_samples
    samples = _sample_list(X)
    if samples is not None:
        raw = np.asarray(samples[sample])
        return [samples[sample]], raw, np.ones(raw.shape[0], dtype=bool)
    if hasattr(X, "iloc"):  # DataFrame: 2D, one element per sample
        one = X.iloc[sample : sample + 1]
        return one, np.asarray(one, dtype=float), np.ones(1, dtype=bool)
    array = np.asarray(X)
    if array.ndim == 3:
        raw = array[sample]
        real = ~np.all(np.isnan(raw.astype(float)), axis=1)
        return array[sample : sample + 1], raw, real
    if array.ndim == 2:
        return array[sample : sample + 1], array[sample : sample + 1], np.ones(1, dtype=bool)
    raise ValueError(
        "X must be a 2D array-like, a 3D array or a list of 2D array-likes; "
        f"got an array with {array.ndim} dimension(s)."
    )


def _per_element(values, real, name):
    """Select the real elements of a per-element array given for one sample."""
    values = np.asarray(values)
    if values.shape[0] == real.shape[0]:
        return values[real]
    if values.shape[0] == int(real.sum()):
        return values
    raise ValueError(
        f"{name} has {values.shape[0]} entries, but the sample has "
        f"{int(real.sum())} elements."
    )


class AttentionDisplay:
    """Attention weights of one sample: bars per element or a heatmap.

    Build it with :meth:`from_estimator` (which also plots) or from weights
    you already have, then call :meth:`plot`.  Bars show the weight of every
    element (averaged over heads, or of one head) next to the uniform weight
    ``1 / n_elements`` that mean pooling would give; the heatmap shows every
    head over the elements, which suits sequences.  Optional image
    thumbnails under the axis show what each element is.

    Parameters
    ----------
    weights : ndarray of shape (n_elements, n_heads)
        Attention weights of the sample's elements (padding excluded).
    images : ndarray of shape (n_elements, height, width), default=None
        One picture per element, drawn under the axis.
    highlight : array-like of bool of shape (n_elements,), default=None
        Elements to draw in a second colour (for example the ones known to
        matter).
    highlight_label : str, default="highlighted"
        Legend entry of the highlighted elements.
    element_labels : array-like of shape (n_elements,), default=None
        Tick labels of the elements; defaults to their positions in the
        sample.
    estimator_name : str, default=None
        Name used in the title.
    sample : int, default=None
        Index of the sample drawn, named in the title.

    Attributes
    ----------
    ax_ : matplotlib Axes
        Axes with the bars or the heatmap.
    figure_ : matplotlib Figure
        Figure containing ``ax_``.
    bars_ : matplotlib BarContainer or None
        The bars (``kind="bar"``).
    image_ : matplotlib AxesImage or None
        The heatmap (``kind="heatmap"``).
    colorbar_ : matplotlib Colorbar or None
        Colour bar of the heatmap.
    uniform_line_ : matplotlib Line2D or None
        The mean-pooling reference ``1 / n_elements`` (``kind="bar"``).
    thumbnail_axes_ : list of matplotlib Axes
        One small axes per element image (empty without images).

    See Also
    --------
    sk_attention.AttentionClassifier.attention_weights : The weights drawn here.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_attention.plotting import AttentionDisplay
    >>> weights = np.array([[0.1, 0.2], [0.7, 0.6], [0.2, 0.2]])
    >>> display = AttentionDisplay(weights, highlight=[False, True, False])
    >>> display.weights.shape
    (3, 2)
    >>> display.plot()  # doctest: +SKIP
    """

    def __init__(
        self,
        weights,
        *,
        images=None,
        highlight=None,
        highlight_label="highlighted",
        element_labels=None,
        estimator_name=None,
        sample=None,
    ):
        weights = np.asarray(weights, dtype=float)
        if weights.ndim == 1:
            weights = weights[:, None]
        if weights.ndim != 2:
            raise ValueError(
                f"weights must have shape (n_elements, n_heads), got {weights.shape}."
            )
        n_elements = weights.shape[0]
        if images is not None:
            images = np.asarray(images)
            if images.ndim != 3 or images.shape[0] != n_elements:
                raise ValueError(
                    "images must have shape (n_elements, height, width) with "
                    f"n_elements={n_elements}, got {images.shape}; pass image_shape "
                    "to from_estimator to reshape flat elements."
                )
        if highlight is not None:
            highlight = np.asarray(highlight, dtype=bool)
            if highlight.shape != (n_elements,):
                raise ValueError(
                    f"highlight must have shape ({n_elements},), got {highlight.shape}."
                )
        if element_labels is not None and len(element_labels) != n_elements:
            raise ValueError(
                f"element_labels has {len(element_labels)} entries, expected {n_elements}."
            )
        self.weights = weights
        self.images = images
        self.highlight = highlight
        self.highlight_label = highlight_label
        self.element_labels = element_labels
        self.estimator_name = estimator_name
        self.sample = sample

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X,
        *,
        sample=0,
        kind="bar",
        head="mean",
        images=None,
        image_shape=None,
        highlight=None,
        highlight_label="highlighted",
        element_labels=None,
        ax=None,
        **kwargs,
    ):
        """Plot the attention weights of one sample of X.

        Parameters
        ----------
        estimator : fitted attention estimator or Pipeline
            An estimator with ``attention_weights`` (AttentionClassifier,
            AttentionRegressor, AttentionPooling), or a Pipeline whose last
            step is one: the sample is transformed by the earlier steps first.
        X : array-like, 3D ndarray or list of array-likes
            Samples in any form of the data model (raw, before the Pipeline).
        sample : int, default=0
            Index of the sample to draw.
        kind : {"bar", "heatmap"}, default="bar"
            Bars per element, or a heads-by-elements heatmap.
        head : "mean" or int, default="mean"
            For bars: the mean over heads or one head's weights.
        images : True or array-like of shape (n_elements, ...), default=None
            Thumbnails under the axis: True uses the sample's raw elements;
            an array gives one image (or flat vector) per element.
        image_shape : tuple of int, default=None
            Shape to reshape each element's image to, e.g. ``(8, 8)``.
        highlight : array-like of bool of shape (n_elements,), default=None
            Elements drawn in a second colour.
        highlight_label : str, default="highlighted"
            Legend entry of the highlighted elements.
        element_labels : array-like of shape (n_elements,), default=None
            Tick labels; defaults to the elements' positions.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure is created when None.
        **kwargs : dict
            Passed to :meth:`plot` (``values=False`` hides the numbers above
            the bars) and from there to ``ax.bar`` or ``ax.imshow``.

        Returns
        -------
        display : AttentionDisplay
            The display, with the plot drawn.
        """
        _import_pyplot()
        final = attention_estimator(estimator)
        if not hasattr(final, "attention_weights"):
            raise TypeError(
                f"{type(final).__name__} has no attention_weights; pass an attention "
                "estimator or a Pipeline that holds one."
            )
        one, raw, real = _one_sample(X, sample)
        weights = np.asarray(attention_weights(estimator, one)[0])[real]

        if images is True:
            images = raw
        if images is not None:
            images = _per_element(images, real, "images")
            if image_shape is not None:
                images = images.reshape((images.shape[0], *image_shape))
        if highlight is not None:
            highlight = _per_element(highlight, real, "highlight")
        if element_labels is None:
            element_labels = np.flatnonzero(real)
        else:
            element_labels = _per_element(element_labels, real, "element_labels")

        display = cls(
            weights,
            images=images,
            highlight=highlight,
            highlight_label=highlight_label,
            element_labels=element_labels,
            estimator_name=type(final).__name__,
            sample=int(sample) % _n_samples(X),
        )
        return display.plot(ax=ax, kind=kind, head=head, **kwargs)

    def plot(self, ax=None, *, kind="bar", head="mean", values=True, **kwargs):
        """Draw the weights.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure is created when None.
        kind : {"bar", "heatmap"}, default="bar"
            Bars per element, or a heads-by-elements heatmap.
        head : "mean" or int, default="mean"
            For bars: the mean over heads or one head's weights.
        values : bool, default=True
            For bars: write each weight above its bar.
        **kwargs : dict
            Passed to ``ax.bar`` or ``ax.imshow``.

        Returns
        -------
        display : AttentionDisplay
            Object that stores the matplotlib artists.
        """
        plt = _import_pyplot()
        if kind not in ("bar", "heatmap"):
            raise ValueError(f'kind must be "bar" or "heatmap", got {kind!r}.')
        n_elements, n_heads = self.weights.shape
        new_axes = ax is None
        if new_axes:
            width = max(4.0, 0.45 * n_elements + 1.5)
            _, ax = plt.subplots(figsize=(width, 3.2 if self.images is None else 3.8))
        labels = (
            np.arange(n_elements) if self.element_labels is None else self.element_labels
        )
        positions = np.arange(n_elements)
        self.bars_ = self.image_ = self.colorbar_ = self.uniform_line_ = None

        if kind == "bar":
            if head == "mean":
                heights, what = self.weights.mean(axis=1), "mean over heads"
            elif isinstance(head, Integral) and 0 <= head < n_heads:
                heights, what = self.weights[:, head], f"head {head}"
            else:
                raise ValueError(
                    f'head must be "mean" or an int in [0, {n_heads}), got {head!r}.'
                )
            colors = np.full(n_elements, _BAR_COLOR, dtype=object)
            if self.highlight is not None:
                colors[self.highlight] = _HIGHLIGHT_COLOR
            kwargs.setdefault("color", list(colors))
            self.bars_ = ax.bar(positions, heights, **kwargs)
            if values:
                ax.bar_label(self.bars_, fmt="%.2f", fontsize="x-small", padding=1)
            self.uniform_line_ = ax.axhline(
                1.0 / n_elements, color="0.3", linestyle="--", linewidth=1,
                label=f"mean pooling (1/{n_elements})",
            )
            ax.set_xlim(-0.5, n_elements - 0.5)
            ax.set_ylim(0, max(float(heights.max()), 1.0 / n_elements) * 1.4)
            ax.set_ylabel(f"attention weight\n({what})")
            handles = [self.uniform_line_]
            if self.highlight is not None and self.highlight.any():
                handles.insert(0, plt.Rectangle((0, 0), 1, 1, color=_HIGHLIGHT_COLOR,
                                                label=self.highlight_label))
            ax.legend(handles=handles, loc="best", fontsize="small", framealpha=0.9)
        else:
            kwargs.setdefault("cmap", "viridis")
            kwargs.setdefault("aspect", "auto")
            kwargs.setdefault("vmin", 0.0)
            self.image_ = ax.imshow(self.weights.T, interpolation="nearest", **kwargs)
            ax.set_yticks(np.arange(n_heads), [f"head {k}" for k in range(n_heads)])
            self.colorbar_ = ax.figure.colorbar(self.image_, ax=ax, label="attention weight")
            if self.highlight is not None:
                for position in positions[self.highlight]:
                    ax.axvspan(position - 0.5, position + 0.5, fill=False,
                               edgecolor=_HIGHLIGHT_COLOR, linewidth=2.5)

        ax.set_xticks(positions, [str(label) for label in labels])
        self.thumbnail_axes_ = []
        if self.images is not None:
            self._draw_thumbnails(ax)
        else:
            ax.set_xlabel("element")
        if new_axes and (self.estimator_name is not None or self.sample is not None):
            whose = f" of {self.estimator_name}" if self.estimator_name is not None else ""
            which = f", sample {self.sample}" if self.sample is not None else ""
            ax.set_title(f"Attention{whose}{which}")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    def _draw_thumbnails(self, ax):
        """One small image per element, under the axis, aligned with the bars."""
        ax.tick_params(axis="x", labelbottom=False, length=0)
        n_elements = self.images.shape[0]
        bbox = ax.get_position()
        fig_w, fig_h = ax.figure.get_size_inches()
        slot = bbox.width * fig_w / n_elements  # inches per element
        height = min(0.9 * slot / (bbox.height * fig_h), 0.5)
        for i, image in enumerate(self.images):
            thumb = ax.inset_axes([(i + 0.05) / n_elements, -0.04 - height,
                                   0.9 / n_elements, height])
            thumb.imshow(image, cmap="gray_r", interpolation="nearest")
            thumb.set_xticks([])
            thumb.set_yticks([])
            if self.highlight is not None and self.highlight[i]:
                for spine in thumb.spines.values():
                    spine.set_edgecolor(_HIGHLIGHT_COLOR)
                    spine.set_linewidth(3)
            else:
                for spine in thumb.spines.values():
                    spine.set_edgecolor("0.6")
            self.thumbnail_axes_.append(thumb)
