"""scikit-learn's own estimator checks.

The default instances pass every check with no expected failure.  The
instances with an element embedding fit a non-convex objective (a ReLU
layer): the sample-weight check fits weighted and repeated data, whose sums
differ in the last bits, and L-BFGS-B then ends in different local optima
(measured on 8 seeds of the check's data: 22 of 24 fits differ by up to
0.13).  That one check is an expected failure for them;
``tests/test_contract.py`` tests instead that the objective itself gives a
weight of 2 exactly the value of a repeated sample.
"""

from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from sk_attention import (
    AttentionClassifier,
    AttentionPooling,
    AttentionRegressor,
    ElementwiseTransformer,
    PositionalEncoding,
    RandomConvolutions,
)

ESTIMATORS = [
    AttentionClassifier(random_state=0),
    AttentionRegressor(random_state=0),
    AttentionPooling(random_state=0),
    AttentionClassifier(embedding_size=8, random_state=0),
    AttentionRegressor(embedding_size=8, random_state=0),
    AttentionPooling(embedding_size=8, random_state=0),
    ElementwiseTransformer(StandardScaler()),
    PositionalEncoding(),
    RandomConvolutions(n_kernels=10, random_state=0),
]


def _expected_failed_checks(estimator):
    if getattr(estimator, "embedding_size", None) is None:
        return {}
    return {
        "check_sample_weight_equivalence_on_dense_data": (
            "non-convex objective: weighted and repeated data round differently and "
            "L-BFGS-B ends in another local optimum"
        )
    }


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
