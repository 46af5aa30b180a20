"""AttentionDisplay: attributes, input forms, Pipelines, missing matplotlib."""

import importlib
import sys

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_attention import AttentionClassifier, AttentionRegressor, ElementwiseTransformer


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.RandomState(0)
    bags = [rng.normal(size=(rng.randint(3, 8), 4)) for _ in range(40)]
    y = np.arange(40) % 2
    for bag, label in zip(bags, y):
        bag[0] += 3 * label
    model = make_pipeline(
        ElementwiseTransformer(StandardScaler()),
        AttentionClassifier(n_heads=2, max_iter=30, random_state=0),
    )
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(bags, y)
    return model, bags


@pytest.fixture
def plt():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def test_importing_the_package_does_not_import_matplotlib():
    code = (
        "import sys, sk_attention, sk_attention.plotting; "
        "assert 'matplotlib' not in sys.modules"
    )
    import subprocess

    subprocess.run([sys.executable, "-c", code], check=True)


def test_bar_display_from_pipeline(fitted, plt):
    from sk_attention.plotting import AttentionDisplay

    model, bags = fitted
    highlight = np.zeros(len(bags[1]), dtype=bool)
    highlight[0] = True
    display = AttentionDisplay.from_estimator(model, bags, sample=1, highlight=highlight)
    expected = model[-1].attention_weights(model[0].transform(bags[1:2]))[0]
    np.testing.assert_allclose(display.weights, expected)
    assert display.ax_.figure is display.figure_
    assert len(display.bars_) == len(bags[1])
    np.testing.assert_allclose(
        [bar.get_height() for bar in display.bars_], expected.mean(axis=1)
    )
    np.testing.assert_allclose(display.uniform_line_.get_ydata(), 1 / len(bags[1]))
    assert display.bars_[0].get_facecolor() != display.bars_[1].get_facecolor()
    assert display.image_ is None and display.thumbnail_axes_ == []


def test_heatmap_with_one_head_images_and_given_axes(fitted, plt):
    from sk_attention.plotting import AttentionDisplay

    model, bags = fitted
    _, ax = plt.subplots()
    display = AttentionDisplay.from_estimator(
        model, bags, sample=2, kind="heatmap", images=True, image_shape=(2, 2), ax=ax
    )
    assert display.ax_ is ax
    assert display.image_.get_array().shape == (2, len(bags[2]))
    assert display.colorbar_ is not None
    assert len(display.thumbnail_axes_) == len(bags[2])
    bars = AttentionDisplay.from_estimator(model, bags, sample=2, head=1)
    expected = model[-1].attention_weights(model[0].transform(bags[2:3]))[0][:, 1]
    np.testing.assert_allclose([b.get_height() for b in bars.bars_], expected)


def test_padded_3d_input_drops_padding(plt):
    from sk_attention.plotting import AttentionDisplay

    rng = np.random.RandomState(0)
    X = rng.normal(size=(30, 6, 3))
    X[::2, 4:] = np.nan
    y = rng.normal(size=30)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = AttentionRegressor(n_heads=3, max_iter=20, random_state=0).fit(X, y)
    display = AttentionDisplay.from_estimator(reg, X, sample=0, kind="heatmap")
    assert display.weights.shape == (4, 3)
    np.testing.assert_allclose(display.weights.sum(axis=0), 1.0, rtol=1e-5)
    assert [t.get_text() for t in display.ax_.get_xticklabels()] == ["0", "1", "2", "3"]


def test_plot_from_weights_and_errors(plt):
    from sk_attention.plotting import AttentionDisplay

    display = AttentionDisplay([0.2, 0.5, 0.3], element_labels=["a", "b", "c"]).plot()
    assert display.weights.shape == (3, 1)
    assert [t.get_text() for t in display.ax_.get_xticklabels()] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="kind"):
        display.plot(kind="pie")
    with pytest.raises(ValueError, match="head"):
        display.plot(head=3)
    with pytest.raises(ValueError, match="highlight"):
        AttentionDisplay([0.5, 0.5], highlight=[True])
    with pytest.raises(ValueError, match="images"):
        AttentionDisplay([0.5, 0.5], images=np.zeros((2, 4)))
    with pytest.raises(TypeError, match="attention_weights"):
        AttentionDisplay.from_estimator(StandardScaler().fit([[0.0], [1.0]]), [[0.0]])


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    import sk_attention.plotting as plotting

    plotting = importlib.reload(plotting)  # importing still works
    display = plotting.AttentionDisplay([0.5, 0.5])
    with pytest.raises(ImportError, match=r'pip install "sk_attention\[plot\]"'):
        display.plot()
    with pytest.raises(ImportError, match="matplotlib"):
        plotting.AttentionDisplay.from_estimator(None, [[0.0]])
