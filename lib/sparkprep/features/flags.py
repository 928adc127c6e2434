"""The features job's flags and config: which columns become features, how they are fitted, what is written."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

from sparkprep.flags import FORMATS, Flags, merged_settings, table_input_output, wrap
from sparkprep.split import assign as split_assign
from sparkprep.uris import check_report_uri
from sparkprep.values import choice, whole_number

FEATURE_OUTPUTS = ("xgboost-csv", "libsvm", "parquet")
IMPUTE = ("median", "mean", "none")
SCALE = ("none", "standard", "minmax")
_COLUMN = re.compile(r"^[^,`\s][^,`]*$")


@dataclass(frozen=True)
class FeaturesConfig:
    """Columns to turn into features, how the Spark ML pipeline is fitted (on --fit-split only), and outputs."""

    input: str
    output: str
    label_column: str
    categorical: Tuple[str, ...] = ()
    numeric: Optional[Tuple[str, ...]] = None  # None: auto, every numeric column but the key and the label
    impute: str = "median"
    scale: str = "none"
    to: Tuple[str, ...] = ("xgboost-csv", "parquet")
    fit_split: str = "train"
    rows_per_file: int = 500_000
    format: str = "auto"
    report: Optional[str] = None


FEATURES_FLAGS = Flags(help={
    "input": "a split table of tabular rows (jobs/split.py --input rows.csv), parquet or Delta",
    "output": "a new directory (or an earlier features output) for the feature files and the fitted model",
    "label-column": "the label: numbers are kept; strings become 0..k-1 in sorted order (label_map.json)",
    "categorical": "comma-separated string columns to one-hot encode (unseen values go to <column>=__unknown__)",
    "numeric": "auto (default: every numeric column but the key, the label and the categoricals) or a list",
    "impute": "median (default) | mean | none: missing numeric values (none keeps them missing)",
    "scale": "none (default) | standard | minmax: the numeric features, with statistics of the fit split",
    "to": "comma-separated outputs: xgboost-csv, libsvm, parquet (default xgboost-csv,parquet)",
    "fit-split": "the split the pipeline is fitted on (default train); every split is transformed",
    "rows-per-file": "rows per CSV, libsvm or parquet file, about (default 500000; files are written in parallel)",
    "format": "the input table's format: auto (default, detected), parquet or delta",
    "report": "where to write the JSON run report (default <output>/_run_report.json)",
}, lists=frozenset({"categorical", "numeric", "to"}), numbers=frozenset({"rows-per-file"}))


def features_config(argv: Optional[Sequence[str]] = None) -> FeaturesConfig:
    """Parse and validate the features job's arguments."""
    settings = merged_settings(argv, "features", FEATURES_FLAGS,
                               "Fit impute/encode/scale on the train split only; write XGBoost CSV, libsvm, parquet.")
    return wrap(lambda: features_values(settings))


def column_list(flag: str, text: Any) -> Tuple[str, ...]:
    """Comma-separated column names, each once."""
    names = tuple(n.strip() for n in str(text).split(",") if n.strip())
    for name in names:
        if not _COLUMN.match(name):
            raise ValueError(f"{flag}: expected column names separated by commas, got {name!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"{flag}: expected each column once, got {text!r}")
    return names


def features_values(s: Dict[str, Any]) -> FeaturesConfig:
    """A checked FeaturesConfig from merged settings."""
    source, output = table_input_output(s, "an existing split table directory")
    if not s.get("label_column"):
        raise ValueError("--label-column: expected the label column's name, got nothing")
    label = column_list("--label-column", s["label_column"])
    if len(label) != 1:
        raise ValueError(f"--label-column: expected one column, got {s['label_column']!r}")
    categorical = column_list("--categorical", s.get("categorical") or "")
    numeric_text = str(s.get("numeric") or "auto")
    numeric = None if numeric_text == "auto" else column_list("--numeric", numeric_text)
    roles = [label[0], *categorical, *(numeric or ())]
    twice = sorted({c for c in roles if roles.count(c) > 1})
    if twice:
        raise ValueError(f"--numeric/--categorical/--label-column: expected each column in one role, "
                         f"got {twice[0]!r} twice")
    impute = choice("--impute", s.get("impute", "median"), IMPUTE)
    scale = choice("--scale", s.get("scale", "none"), SCALE)
    if impute == "none" and scale != "none":
        raise ValueError(f"--scale: expected none with --impute none (scaling needs every value), got {scale}")
    to = tuple(choice("--to", t.strip(), FEATURE_OUTPUTS) for t in str(s.get("to") or "xgboost-csv,parquet").split(",")
               if t.strip())
    if not to or len(set(to)) != len(to):
        raise ValueError(f"--to: expected one or more of {', '.join(FEATURE_OUTPUTS)}, each once, got {s.get('to')!r}")
    values: Dict[str, Any] = {
        "input": source, "output": output, "label_column": label[0], "categorical": categorical, "numeric": numeric,
        "impute": impute, "scale": scale, "to": to,
        "fit_split": split_assign.check_split_name(str(s.get("fit_split", "train")), "--fit-split"),
        "rows_per_file": whole_number("--rows-per-file", s.get("rows_per_file", 500_000), 1000, 10 ** 9),
        "format": choice("--format", s.get("format", "auto"), ("auto",) + FORMATS),
    }
    if s.get("report"):
        values["report"] = check_report_uri(str(s["report"]), output)
    return FeaturesConfig(**values)
