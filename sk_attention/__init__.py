"""Attention pooling (Bahdanau-style) as scikit-learn estimators.

Each sample is a collection of elements (a bag, a set, a sequence).  The
estimators learn which elements matter, pool them into one vector and
predict.
"""

from ._classifier import AttentionClassifier
from ._elementwise import ElementwiseTransformer
from ._inspection import attention_weights
from ._pooling import AttentionPooling
from ._positional import PositionalEncoding
from ._random_convolutions import RandomConvolutions
from ._regressor import AttentionRegressor

__version__ = "0.1.0"

__all__ = [
    "AttentionClassifier",
    "AttentionRegressor",
    "AttentionPooling",
    "ElementwiseTransformer",
    "PositionalEncoding",
    "RandomConvolutions",
    "attention_weights",
    "__version__",
]
