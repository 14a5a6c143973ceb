"""Tabular data as people have it: a pandas DataFrame <-> the numeric matrix a generator learns.

Numeric columns (integer, float, nullable ``Int64``/``Float64``) are kept as they are;
the generator's scaler standardises them. Categorical columns (``category``, ``bool``,
``object`` and string dtypes) are one-hot encoded and decoded by taking the largest entry of
their block. Decoding restores the column order, the dtypes and, for ``category`` columns,
the full category set (unused categories included, ``ordered`` kept), and keeps integer
columns integral and every numeric column inside the range seen in ``fit``.

pandas is imported only when a DataFrame is actually seen: numpy stays numpy.
"""
from __future__ import annotations

import numpy as np

__all__ = ["TabularEncoder", "is_dataframe"]


def is_dataframe(X) -> bool:
    """True for a pandas DataFrame (checked without importing pandas)."""
    return type(X).__module__.split(".")[0] == "pandas" and hasattr(X, "columns") and hasattr(X, "dtypes")


def _json_value(value):
    """A category value as JSON can hold it (numpy scalars become Python ones)."""
    return value.item() if isinstance(value, np.generic) else value


_JSON_SCALARS = (str, int, float, bool, type(None))


def _check_saveable(value, what: str) -> None:
    """Refuse, at fit, a column name or category that the model file's JSON could not hold (it
    would fit and generate, then fail on save, or load back as another type)."""
    parts = value if isinstance(value, tuple) else (value,)  # MultiIndex names are tuples
    bad = next((p for p in parts if not isinstance(p, _JSON_SCALARS)), None)
    if bad is not None:
        raise TypeError(f"{what} {value!r} (type {type(bad).__name__}) cannot be held in a synthaug model file; "
                        "convert it to a string or a number first (e.g. df[col].astype(str))")


def _name_from_json(name):
    """A column name read back from JSON: lists were tuples (MultiIndex columns)."""
    return tuple(name) if isinstance(name, list) else name


def _to_integers(values: np.ndarray, lo, hi, dtype) -> np.ndarray:
    """Rounded floats clipped to the integers ``lo``..``hi`` in ``dtype``, exactly at the ends:
    float64 cannot hold int64's or uint64's largest values, and casting them wraps around."""
    dtype = np.dtype(dtype)
    v = np.rint(values)
    out = np.empty(len(v), dtype=dtype)
    top, bottom = v >= float(hi), v <= float(lo)
    out[top], out[bottom] = hi, lo
    middle = ~(top | bottom)
    out[middle] = v[middle].astype(dtype)
    return out


class TabularEncoder:
    """Encode a DataFrame's columns as numbers and decode numbers back to the same DataFrame schema.

    Attributes (after ``fit``)
    --------------------------
    columns_ : list of dict
        One description per column: ``name``, ``kind`` (``"numeric"`` or ``"categorical"``),
        ``dtype`` (the pandas dtype as a string) and, for numeric columns, ``integer``, ``min``,
        ``max`` (and ``sparse_fill_value`` for a pandas sparse column, whose ``dtype`` is then
        the subtype); for categorical ones, ``categories`` (and ``ordered``, ``categories_dtype`` for
        ``category`` columns) and ``frequencies`` (used only to break exact ties when decoding).
    n_output_features_ : int
        Width of the encoded matrix.
    columns_dtype_ : str
        dtype of the DataFrame's column index (``str`` or ``object`` for names, depending on pandas).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"age": [30, 41, 52], "city": pd.Categorical(["a", "b", "a"])})
    >>> enc = TabularEncoder().fit(df)
    >>> enc.transform(df).shape
    (3, 3)
    >>> enc.inverse_transform(enc.transform(df)).dtypes.astype(str).tolist()
    ['int64', 'category']
    """

    # -- fitting ---------------------------------------------------------------------------------
    def fit(self, frame) -> "TabularEncoder":
        """Learn each column's kind, dtype, range or categories from ``frame``."""
        import pandas as pd

        if frame.shape[1] == 0:
            raise ValueError("X is a DataFrame with no columns; pass at least one column")
        if frame.columns.has_duplicates:
            dup = frame.columns[frame.columns.duplicated()].unique().tolist()
            raise ValueError(f"X has duplicated column names {dup}; column names must be unique")
        self.columns_ = []
        for name in frame.columns:
            _check_saveable(name, "X column name")
            col = frame[name]
            self._check_missing(col, name)
            dtype = col.dtype
            if isinstance(dtype, pd.CategoricalDtype):
                cats = dtype.categories
                spec = {"kind": "categorical", "categories": [_json_value(c) for c in cats],
                        "categories_dtype": str(cats.dtype), "ordered": bool(dtype.ordered)}
            elif pd.api.types.is_bool_dtype(dtype):
                spec = {"kind": "categorical", "categories": [False, True]}
            elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
                integer = bool(pd.api.types.is_integer_dtype(dtype))
                if integer:  # exact: float64 rounds int64's extremes out of range
                    lo, hi = int(col.min()), int(col.max())
                else:
                    values = col.to_numpy(dtype=np.float64)
                    lo, hi = float(values.min()), float(values.max())
                spec = {"kind": "numeric", "integer": integer, "min": lo, "max": hi}
                if isinstance(dtype, pd.SparseDtype):  # pandas cannot parse its own str(SparseDtype)
                    spec["sparse_fill_value"] = _json_value(dtype.fill_value)
                    dtype = dtype.subtype
            elif pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
                uniques = pd.unique(col.to_numpy(dtype=object))
                try:
                    uniques = sorted(uniques)
                except TypeError:  # mixed types: keep the order of first appearance
                    uniques = list(uniques)
                spec = {"kind": "categorical", "categories": [_json_value(c) for c in uniques]}
            else:
                raise TypeError(
                    f"X column {name!r} has dtype {dtype}, which synthaug cannot model; "
                    "use numeric, bool, category, string or object columns (convert dates to numbers)"
                )
            spec = {"name": name, "dtype": str(dtype), **spec}
            for category in spec.get("categories", ()):
                _check_saveable(category, f"X column {name!r}: category")
            if spec["kind"] == "categorical":
                codes = self._codes(col, spec)
                spec["frequencies"] = (np.bincount(codes, minlength=len(spec["categories"])) / len(codes)).tolist()
            self.columns_.append(spec)
        self.n_output_features_ = sum(self._width(s) for s in self.columns_)
        self.columns_dtype_ = str(frame.columns.dtype)
        return self

    @staticmethod
    def _width(spec) -> int:
        return len(spec["categories"]) if spec["kind"] == "categorical" else 1

    @staticmethod
    def _check_missing(col, name, data: str = "X") -> None:
        missing = np.asarray(col.isna())
        if missing.any():
            rows = np.flatnonzero(missing)
            raise ValueError(
                f"{data} column {name!r} contains missing values in {len(rows)} rows (first: row {rows[0]}); "
                "remove or impute them"
            )

    @staticmethod
    def _codes(col, spec, data: str = "X") -> np.ndarray:
        """Category codes of a column; unknown values raise a ValueError naming them."""
        import pandas as pd

        cats = spec["categories"]
        codes = pd.Categorical(col.to_numpy(dtype=object), categories=pd.Index(cats, dtype=object)).codes
        if (codes < 0).any():
            unknown = pd.unique(col.to_numpy(dtype=object)[codes < 0])[:5].tolist()
            raise ValueError(
                f"{data} column {spec['name']!r} has values not seen in fit: {unknown}; known: {cats[:20]}"
            )
        return np.asarray(codes, dtype=np.int64)

    # -- encoding ----------------------------------------------------------------------------
    def transform(self, X, data: str = "X") -> np.ndarray:
        """Encode ``X`` (a DataFrame with the fitted columns, or a 2-D array in their order).

        ``data`` names ``X`` in error messages.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_output_features_), float64
            Numeric columns as they are, categorical columns one-hot.
        """
        import pandas as pd

        names = [s["name"] for s in self.columns_]
        if not is_dataframe(X):
            X = np.asarray(X, dtype=object) if not hasattr(X, "shape") else X
            if getattr(X, "ndim", 0) != 2 or X.shape[1] != len(names):
                raise ValueError(
                    f"{data} must be a DataFrame or a 2-D array with the {len(names)} columns seen in fit "
                    f"({names[:10]}); got shape {getattr(X, 'shape', None)}"
                )
            X = pd.DataFrame(np.asarray(X, dtype=object), columns=pd.Index(names, dtype=object))
        missing = [n for n in names if n not in X.columns]
        if missing:
            raise ValueError(f"{data} lacks the columns {missing[:10]} seen in fit")
        out = np.zeros((len(X), self.n_output_features_), dtype=np.float64)
        j = 0
        for spec in self.columns_:
            col = X[spec["name"]]
            self._check_missing(col, spec["name"], data)
            if spec["kind"] == "numeric":
                try:
                    out[:, j] = col.to_numpy(dtype=np.float64)
                except (TypeError, ValueError):
                    raise ValueError(
                        f"{data} column {spec['name']!r} must be numeric as in fit; got dtype {col.dtype}"
                    ) from None
                j += 1
            else:
                codes = self._codes(col, spec, data)
                out[np.arange(len(X)), j + codes] = 1.0
                j += len(spec["categories"])
        return out

    def inverse_transform(self, Z):
        """Decode an encoded matrix to a DataFrame with the fitted columns, dtypes and categories.

        Numeric columns are clipped to the range seen in ``fit`` (integer ones rounded);
        each categorical block decodes to its largest entry.
        """
        import pandas as pd

        Z = np.asarray(Z, dtype=np.float64).reshape(len(Z), -1)
        if Z.shape[1] != self.n_output_features_:
            raise ValueError(f"encoded data must have {self.n_output_features_} columns; got {Z.shape[1]}")
        data = {}
        j = 0
        for spec in self.columns_:
            if spec["kind"] == "numeric":
                if spec["integer"]:
                    numpy_dtype = getattr(pd.api.types.pandas_dtype(spec["dtype"]), "numpy_dtype", None) \
                        or pd.api.types.pandas_dtype(spec["dtype"])
                    values = _to_integers(Z[:, j], spec["min"], spec["max"], numpy_dtype)
                else:
                    values = np.clip(Z[:, j], spec["min"], spec["max"])
                values = pd.Series(values).astype(spec["dtype"])
                if "sparse_fill_value" in spec:
                    fill = spec["sparse_fill_value"]
                    values = values.astype(pd.SparseDtype(spec["dtype"], fill))
                data[spec["name"]] = values
                j += 1
                continue
            k = len(spec["categories"])
            # Exact ties (e.g. an all-zero block) go to the more frequent category.
            block = Z[:, j:j + k] + 1e-9 * np.asarray(spec["frequencies"])
            codes = block.argmax(axis=1)
            data[spec["name"]] = self._decode_categorical(codes, spec)
            j += k
        frame = pd.DataFrame(data)
        frame.columns = pd.Index([s["name"] for s in self.columns_], dtype=self.columns_dtype_)
        return frame

    @staticmethod
    def _decode_categorical(codes, spec):
        import pandas as pd

        if spec["dtype"] == "category":
            cats = pd.Index(spec["categories"], dtype=spec["categories_dtype"])
            dtype = pd.CategoricalDtype(cats, ordered=spec["ordered"])
            return pd.Series(pd.Categorical.from_codes(codes, dtype=dtype))
        values = np.empty(len(codes), dtype=object)
        values[:] = [spec["categories"][c] for c in codes]
        return pd.Series(values, dtype=object).astype(spec["dtype"])

    # -- saving (JSON, no pickle) ----------------------------------------------------------------
    def to_dict(self) -> dict:
        """A JSON-serialisable description (``from_dict`` reads it back)."""
        return {"columns": self.columns_, "n_output_features": self.n_output_features_,
                "columns_dtype": self.columns_dtype_}

    @classmethod
    def from_dict(cls, state: dict) -> "TabularEncoder":
        enc = cls()
        enc.columns_ = [{**c, "name": _name_from_json(c["name"])} for c in state["columns"]]
        enc.n_output_features_ = int(state["n_output_features"])
        enc.columns_dtype_ = state["columns_dtype"]
        return enc
