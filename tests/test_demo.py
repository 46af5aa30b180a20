"""End-to-end tests of ``python -m sk_attention`` (the digit-bags demo)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from sk_attention._demo import localisation_auc, main, make_digit_bags, run_demo


def test_digit_bags_follow_the_protocol():
    data = make_digit_bags(60, random_state=0)
    assert len(data["X_train"]) + len(data["X_test"]) == 60
    for split in ("train", "test"):
        for bag, digits, label in zip(
            data[f"X_{split}"], data[f"digits_{split}"], data[f"y_{split}"]
        ):
            assert 5 <= len(bag) <= 15
            assert bag.shape == (len(digits), 64)
            assert label == int((digits == 9).any())
    # no image is shared between the training and the test bags
    train = {row.tobytes() for bag in data["X_train"] for row in bag}
    test = {row.tobytes() for bag in data["X_test"] for row in bag}
    assert len(train & test) <= 5  # load_digits has a few exact duplicate images


def test_localisation_auc_rewards_weight_on_the_nines():
    digits = [np.array([9, 1, 2]), np.array([3, 9, 9, 4]), np.array([0, 1])]
    perfect = [np.where(d == 9, 1.0, 0.0)[:, None] / max((d == 9).sum(), 1) for d in digits]
    assert localisation_auc(perfect, digits)[0] == 1.0
    uniform = [np.full((len(d), 2), 1.0 / len(d)) for d in digits]
    auc, per_head = localisation_auc(uniform, digits)
    assert auc == 0.5 and per_head == [0.5, 0.5]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # short fits
def test_demo_without_plot_prints_the_comparison(capsys):
    main(["--n-bags", "80", "--max-iter", "30", "--no-plot", "--seed", "1"])
    out = capsys.readouterr().out
    for text in ("attention pooling", "mean pooling + LogisticRegression",
                 "Localisation", "ROC AUC"):
        assert text in out
    assert "Wrote" not in out


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # short fits
def test_demo_beats_mean_pooling_and_finds_the_nines():
    results = run_demo(n_bags=200, max_iter=60, plot=False, file=open(os.devnull, "w"))
    assert results["roc_auc"] > results["baseline_roc_auc"] + 0.1
    assert results["localisation_auc"] > 0.8
    assert results["plot"] is None


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # short fits
def test_demo_writes_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    output = tmp_path / "demo.png"
    results = run_demo(n_bags=60, max_iter=20, output=str(output))
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert results["plot"] == str(output)
    assert str(output) in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # short fits
def test_demo_without_matplotlib_says_which_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    results = run_demo(n_bags=40, max_iter=10, output=str(tmp_path / "x.png"))
    out = capsys.readouterr().out
    assert "Plotting skipped" in out and 'pip install "sk_attention[plot]"' in out
    assert results["plot"] is None and not (tmp_path / "x.png").exists()


def test_python_dash_m_entry_point(tmp_path):
    help_text = subprocess.run(
        [sys.executable, "-m", "sk_attention", "--help"],
        capture_output=True, text=True, check=True,
    ).stdout
    for option in ("--seed", "--n-bags", "--output", "--no-plot"):
        assert option in help_text
    run = subprocess.run(
        [sys.executable, "-m", "sk_attention", "--n-bags", "40", "--max-iter", "10", "--no-plot"],
        capture_output=True, text=True, check=True, cwd=tmp_path, timeout=120,
    )
    assert "accuracy" in run.stdout


def test_the_picture_shows_bags_with_a_nine_then_bags_without():
    from sk_attention._demo import _pick_bags

    data = make_digit_bags(120, random_state=0)
    chosen = _pick_bags(data)
    assert [data["y_test"][i] for i in chosen] == [1, 1, 0, 0]
    assert len(set(chosen)) == 4


def test_demo_and_readme_snippet_run_without_warnings(tmp_path):
    # the README's first snippet and the demo at their defaults: no
    # ConvergenceWarning, no scaling warning, and nothing silenced
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    snippet = re.search(r"```python\n(.*?)```", (root / "README.md").read_text(), re.S)[1]
    assert "warnings" not in snippet and "warnings" not in (root / "sk_attention/_demo.py").read_text()
    run = subprocess.run(
        [sys.executable, "-W", "error::UserWarning", "-c", snippet],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    run = subprocess.run(
        [sys.executable, "-W", "error::UserWarning", "-m", "sk_attention", "--no-plot"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
