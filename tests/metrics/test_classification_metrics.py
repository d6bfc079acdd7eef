"""Classification metrics equal scikit-learn's on random and degenerate labelings."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bertkit.metrics import classification as M

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def sklearn_scores(y_true, y_pred):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zero_division / constant-input warnings; values are 0
        return {"accuracy": sklearn_metrics.accuracy_score(y_true, y_pred),
                "macro_f1": sklearn_metrics.f1_score(y_true, y_pred, average="macro"),
                "mcc": sklearn_metrics.matthews_corrcoef(y_true, y_pred)}


LABELINGS = st.integers(1, 60).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 4), min_size=n, max_size=n), st.lists(st.integers(0, 4), min_size=n, max_size=n)))


@settings(max_examples=120, deadline=None)
@given(LABELINGS)
def test_equal_to_sklearn_random(labeling):
    y_true, y_pred = labeling
    ours, ref = M.classification_metrics(y_true, y_pred), sklearn_scores(y_true, y_pred)
    assert ours == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("y_true, y_pred", [
    ([1, 1, 1, 1], [1, 1, 1, 1]),          # one class: MCC 0 by definition
    ([0, 1, 0, 1], [1, 1, 1, 1]),          # constant prediction
    ([0, 1, 2, 3], [3, 2, 1, 0]),          # all wrong
    ([0, 0, 1, 1, 2], [0, 0, 1, 1, 2]),    # perfect
])
def test_equal_to_sklearn_degenerate(y_true, y_pred):
    assert M.classification_metrics(y_true, y_pred) == pytest.approx(sklearn_scores(y_true, y_pred))


def test_large_binary_like_sst2():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, 872)
    y_pred = np.where(rng.random(872) < 0.9, y_true, 1 - y_true)
    assert M.classification_metrics(y_true, y_pred) == pytest.approx(sklearn_scores(y_true, y_pred))
    reference = sklearn_metrics.confusion_matrix(y_true, y_pred)
    assert M.confusion_matrix(y_true, y_pred).tolist() == reference.tolist()


def test_length_mismatch():
    with pytest.raises(ValueError, match="3 true labels but 2 predictions"):
        M.accuracy([0, 1, 1], [0, 1])
