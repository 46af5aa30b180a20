"""Every private scikit-learn helper the package uses, in one place.

scikit-learn may rename or move its private API in any release.  Importing
it here only means one module to fix when it does, and `.ci/run` runs the
suite against the oldest declared scikit-learn as well as the newest, so a
break shows up in CI rather than at a user's.
"""

from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils._set_output import _get_output_config, _wrap_data_with_container
from sklearn.utils.validation import (
    _check_feature_names,
    _check_feature_names_in,
    _check_sample_weight,
)

__all__ = [
    "HasMethods",
    "Interval",
    "StrOptions",
    "check_feature_names",
    "check_feature_names_in",
    "check_sample_weight",
    "get_output_config",
    "wrap_data_with_container",
]

check_feature_names = _check_feature_names
check_feature_names_in = _check_feature_names_in
get_output_config = _get_output_config
check_sample_weight = _check_sample_weight
wrap_data_with_container = _wrap_data_with_container
