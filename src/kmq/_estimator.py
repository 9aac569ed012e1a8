"""scikit-learn's estimator protocol, without importing scikit-learn.

:class:`ParamsMixin` gives kmq's estimators what ``sklearn.base.BaseEstimator``
gives its own: ``get_params`` / ``set_params`` read from the ``__init__``
signature (so ``sklearn.base.clone``, grid searches and ``Pipeline`` work),
a repr, and ``__sklearn_tags__``, which imports scikit-learn only when
scikit-learn itself asks for the tags.
"""

from __future__ import annotations

import inspect
import sys

from ._errors import NotFittedError

__all__ = ["ParamsMixin", "check_fitted"]


class ParamsMixin:
    """get_params / set_params / __repr__ / __sklearn_tags__ from ``__init__``.

    Subclasses store every ``__init__`` argument unchanged under its own
    name and validate nothing there (validation happens in ``fit``), as
    scikit-learn's contract asks. ``_estimator_type`` is "clusterer" or
    None; ``_is_transformer`` adds scikit-learn's transformer tags.
    """

    _estimator_type: str | None = None
    _is_transformer = False

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return sorted(
            name for name, p in signature.parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        )

    def get_params(self, deep: bool = True) -> dict:
        """The ``__init__`` parameters and their current values."""
        params = {}
        for name in self._param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                params.update((f"{name}__{key}", item) for key, item in value.get_params().items())
            params[name] = value
        return params

    def set_params(self, **params):
        """Set ``__init__`` parameters by name; returns self. Unknown names
        are a ValueError (as in scikit-learn)."""
        valid = self._param_names()
        nested: dict[str, dict] = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise ValueError(
                    f"invalid parameter {name!r} for estimator {type(self).__name__}; valid parameters are {valid}"
                )
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        defaults = {
            name: p.default for name, p in inspect.signature(type(self).__init__).parameters.items() if name != "self"
        }
        shown = []
        for name in self._param_names():
            value = getattr(self, name)
            default = defaults.get(name, inspect.Parameter.empty)
            try:
                same = value is default or (type(value) is type(default) and bool(value == default))
            except Exception:  # noqa: BLE001 - arrays and other odd values: show them
                same = False
            if not same:
                shown.append(f"{name}={'array' if hasattr(value, 'shape') else repr(value)}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def __sklearn_is_fitted__(self) -> bool:
        return self._is_fitted()

    def _is_fitted(self) -> bool:
        return any(name.endswith("_") and not name.startswith("_") for name in vars(self))

    def __sklearn_tags__(self):
        # Called by scikit-learn only, so it is importable here.
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        tags = Tags(
            estimator_type=self._estimator_type,
            target_tags=TargetTags(required=False),
            transformer_tags=TransformerTags(preserves_dtype=[]) if self._is_transformer else None,
            input_tags=InputTags(two_d_array=True, sparse=False, allow_nan=False),
        )
        return tags


_SKLEARN_FLAVOURED: list = []


def _not_fitted_class() -> type:
    """kmq.NotFittedError; when scikit-learn is already loaded (it is the
    caller: a Pipeline, a grid search, its estimator checks), a subclass
    that is also scikit-learn's NotFittedError, so that its
    ``except NotFittedError`` catches it. kmq never imports scikit-learn
    for this."""
    sklearn_exceptions = sys.modules.get("sklearn.exceptions")
    if sklearn_exceptions is None:
        return NotFittedError
    if not _SKLEARN_FLAVOURED:
        _SKLEARN_FLAVOURED.append(
            type("NotFittedError", (NotFittedError, sklearn_exceptions.NotFittedError), {"__module__": "kmq"})
        )
    return _SKLEARN_FLAVOURED[0]


def check_fitted(estimator, attribute: str) -> None:
    """Raise kmq.NotFittedError unless ``estimator`` has ``attribute``."""
    if not hasattr(estimator, attribute):
        raise _not_fitted_class()(
            f"this {type(estimator).__name__} instance is not fitted yet; call 'fit' with appropriate arguments "
            "before using this estimator"
        )
