"""The features job's config: which columns become features, how they are fitted, what is written."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

from sparkprep.flags import FORMATS, Job, compose, flag, one_of, table_input_output, text, whole
from sparkprep.split import assign as split_assign
from sparkprep.uris import check_report_uri
from sparkprep.values import choice

FEATURE_OUTPUTS = ("xgboost-csv", "libsvm", "parquet")
IMPUTE = ("median", "mean", "none")
SCALE = ("none", "standard", "minmax")
_COLUMN = re.compile(r"^[^,`\s][^,`]*$")


def column_list(flag_name: str, value: Any) -> Tuple[str, ...]:
    """Comma-separated column names, each once."""
    names = tuple(n.strip() for n in str(value).split(",") if n.strip())
    for name in names:
        if not _COLUMN.match(name):
            raise ValueError(f"{flag_name}: expected column names separated by commas, got {name!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"{flag_name}: expected each column once, got {value!r}")
    return names


def _label(value: str) -> str:
    label = column_list("--label-column", value)
    if len(label) != 1:
        raise ValueError(f"--label-column: expected one column, got {value!r}")
    return label[0]


def _outputs(value: str) -> Tuple[str, ...]:
    to = tuple(choice("--to", t.strip(), FEATURE_OUTPUTS) for t in str(value).split(",") if t.strip())
    if not to or len(set(to)) != len(to):
        raise ValueError(f"--to: expected one or more of {', '.join(FEATURE_OUTPUTS)}, each once, got {value!r}")
    return to


@dataclass(frozen=True)
class FeaturesFlags:
    """Columns to turn into features, how the Spark ML pipeline is fitted (on --fit-split only), and outputs."""

    input: Optional[str] = flag(None, text, "a split table of tabular rows (jobs/split.py --input rows.csv), "
                                            "parquet or Delta")
    output: Optional[str] = flag(None, text, "a new directory (or an earlier features output) for the feature "
                                             "files and the fitted model")
    label_column: Optional[str] = flag(None, _label, "the label: numbers are kept; strings become 0..k-1 in sorted "
                                                     "order (label_map.json)")
    categorical: Tuple[str, ...] = flag((), lambda v: column_list("--categorical", v), (
        "comma-separated string columns to one-hot encode (unseen values go to <column>=__unknown__)"), kind="list")
    numeric: Optional[Tuple[str, ...]] = flag(None, lambda v: column_list("--numeric", v) if str(v) not in ("auto", "")
                                              else None, "auto (every numeric column but the key, the label and the "
                                              "categoricals) or a list", kind="list", shown="`auto`")
    impute: str = flag("median", one_of("--impute", *IMPUTE),
                       "median | mean | none: missing numeric values (none keeps them missing)")
    scale: str = flag("none", one_of("--scale", *SCALE),
                      "none | standard | minmax: the numeric features, with statistics of the fit split")
    to: Tuple[str, ...] = flag(("xgboost-csv", "parquet"), _outputs,
                               f"comma-separated outputs: {', '.join(FEATURE_OUTPUTS)}", kind="list")
    fit_split: str = flag("train", lambda v: split_assign.check_split_name(str(v), "--fit-split"),
                          "the split the pipeline is fitted on; every split is transformed")
    rows_per_file: int = flag(500_000, whole("--rows-per-file", 1000, 10 ** 9),
                              "rows per CSV, libsvm or parquet file, about (files are written in parallel)",
                              kind="number")
    format: str = flag("auto", one_of("--format", "auto", *FORMATS),
                       "the input table's format: auto (detected), parquet or delta")
    report: Optional[str] = flag(None, text, "where to write the JSON run report", shown="`<output>/_run_report.json`")

    @staticmethod
    def checked(values: Dict[str, Any], given: Dict[str, str], job: Job) -> None:
        table_input_output(values, "an existing split table directory")
        if not values["label_column"]:
            raise ValueError("--label-column: expected the label column's name, got nothing")
        roles = [values["label_column"], *values["categorical"], *(values["numeric"] or ())]
        twice = sorted({c for c in roles if roles.count(c) > 1})
        if twice:
            raise ValueError(f"--numeric/--categorical/--label-column: expected each column in one role, "
                             f"got {twice[0]!r} twice")
        if values["impute"] == "none" and values["scale"] != "none":
            raise ValueError(f"--scale: expected none with --impute none (scaling needs every value), "
                             f"got {values['scale']}")
        if values["report"]:
            values["report"] = check_report_uri(str(values["report"]), values["output"])


FeaturesConfig = compose("FeaturesConfig", FeaturesFlags.__doc__, FeaturesFlags)

FEATURES = Job("features", "Fit impute/encode/scale on the train split only; write XGBoost CSV, libsvm, parquet.",
               FeaturesConfig)


def features_config(argv: Optional[Sequence[str]] = None) -> FeaturesConfig:
    """Parse and validate the features job's arguments."""
    return FEATURES.parse(argv)
