"""scikit-learn's own estimator checks, with no expected failures."""

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
    ElementwiseTransformer(StandardScaler()),
    PositionalEncoding(),
    RandomConvolutions(n_kernels=10, random_state=0),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
