"""jobs/features.py on a synthetic churn table: real clients read every output, and nothing is fitted
outside the train split."""

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import CHURN_CATEGORICAL as CATEGORICAL

from sparkprep.errors import UsageError
from sparkprep.features.flags import features_config
from sparkprep.features.spark import run_features


def features(spark, *argv):
    return run_features(spark, features_config([*map(str, argv)]))


def names_of(out):
    return json.loads((out / "feature_names.json").read_text())["features"]


def csv_matrix(path):
    """SageMaker XGBoost's CSV contract: no header, label in column 0, empty fields are missing."""
    import pandas as pd
    import xgboost as xgb

    frame = pd.read_csv(path, header=None)
    return xgb.DMatrix(frame.iloc[:, 1:].to_numpy(), label=frame.iloc[:, 0].to_numpy())


def test_xgboost_trains_on_the_csv_train_split_and_predicts_every_test_row(churn):
    import xgboost as xgb

    _, out, report = churn
    names = names_of(out)
    assert sorted(os.listdir(out / "xgboost-csv")) == ["test", "train", "val"]
    assert os.listdir(out / "xgboost-csv" / "train") == ["part-00000.csv"]  # no _SUCCESS, no .crc
    train = csv_matrix(out / "xgboost-csv" / "train" / "part-00000.csv")
    test = csv_matrix(out / "xgboost-csv" / "test" / "part-00000.csv")
    assert train.num_col() == test.num_col() == len(names) == report["features"]["count"]
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3}, train, num_boost_round=8)
    predicted = booster.predict(test)
    assert len(predicted) == sum(report["counts"]["test"].values()) and set(test.get_label()) <= {0.0, 1.0}
    labels = test.get_label()
    assert predicted[labels == 1].mean() > predicted[labels == 0].mean()  # it learned something real


def test_libsvm_loads_with_sklearn_and_parquet_has_named_feature_columns(churn):
    from sklearn.datasets import load_svmlight_file

    _, out, report = churn
    names = names_of(out)
    x, y = load_svmlight_file(str(out / "libsvm" / "val" / "part-00000.libsvm"), n_features=len(names),
                              zero_based=True)
    table = pq.read_table(str(out / "parquet" / "val")).to_pandas().sort_values("key")
    assert x.shape == (len(table), len(names)) and set(y) <= {0.0, 1.0}
    assert list(table.columns[:3]) == ["key", "split", "churn"] and list(table.columns[3:]) == names
    assert {"state=CA", "state=__unknown__", "intl_plan=yes", "account_length", "day_mins"} <= set(names)
    dense = table[names].to_numpy()
    assert np.allclose(np.sort(dense.sum(axis=1)), np.sort(np.asarray(x.sum(axis=1)).ravel()))
    assert np.allclose(dense[:, names.index("state=AK"):names.index("state=__unknown__") + 1].sum(axis=1), 1.0)
    maps = json.loads((out / "category_maps.json").read_text())
    assert list(maps["intl_plan"]) == ["no", "yes", "__unknown__"]
    assert json.loads((out / "label_map.json").read_text()) == {"False": 0, "True": 1}
    fitted = report["features"]["fitted"]
    assert set(fitted["standard"]) == set(fitted["impute"]) and "phone" not in fitted["impute"]  # the split key
    assert (out / "report.html").exists() and (out / "_sparkprep.json").exists()


def test_the_saved_pipeline_model_gives_the_same_features_on_raw_rows(spark, churn):
    from pyspark.ml import PipelineModel
    from pyspark.ml.functions import vector_to_array

    root, out, _ = churn
    model = PipelineModel.load(str(out / "_model"))
    raw = spark.read.parquet(str(root / "split")).where("split = 'test'")  # strings, as the CSV had them
    served = {r["key"]: r["v"]
              for r in model.transform(raw).select("key", vector_to_array("features").alias("v")).collect()}
    written = pq.read_table(str(out / "parquet" / "test")).to_pandas().set_index("key")[names_of(out)]
    assert set(served) == set(written.index)
    assert all(np.allclose(served[k], written.loc[k].to_numpy()) for k in served)


def test_val_rows_change_the_val_features_but_not_one_fitted_statistic(spark, churn, tmp_path):
    """The same table with every val row altered (numbers x10, an unseen state, missing and unseen
    labels): train's files and the fitted statistics are identical; val's rows are not."""
    root, out, report = churn
    table = pq.read_table(str(root / "split")).to_pandas()
    val = table["split"] == "val"
    for column in ("day_mins", "custserv_calls", "account_length"):
        table.loc[val, column] = (table.loc[val, column].astype(float) * 10).astype(str)
    table.loc[val, "state"] = "ZZ"
    first_val, second_val = table.index[val][:2]
    table.loc[first_val, "label"] = None
    table.loc[second_val, "label"] = "Maybe"
    changed = tmp_path / "changed"
    os.makedirs(changed)
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), str(changed / "part-0.parquet"))
    again = features(spark, "--input", changed, "--output", tmp_path / "features", "--label-column", "label",
                     "--categorical", CATEGORICAL, "--scale", "standard", "--to", "xgboost-csv,libsvm,parquet")
    assert again["features"]["fitted"] == report["features"]["fitted"]
    assert (tmp_path / "features" / "category_maps.json").read_text() == (out / "category_maps.json").read_text()
    for target, name in (("xgboost-csv", "part-00000.csv"), ("libsvm", "part-00000.libsvm")):
        new, old = tmp_path / "features" / target, out / target
        assert (new / "train" / name).read_bytes() == (old / "train" / name).read_bytes()
        assert (new / "val" / name).read_bytes() != (old / "val" / name).read_bytes()
    val_rows = int(val.sum())
    assert again["features"]["unknown_categories"]["val"]["state"] == val_rows - 2
    assert report["features"]["unknown_categories"]["val"]["state"] == 0
    assert {k: v["count"] for k, v in again["quarantine"].items()} == {"missing_label": 1, "unseen_label": 1}
    quarantined = pq.read_table(str(tmp_path / "features" / "quarantine")).to_pylist()
    assert sorted(r["status"] for r in quarantined) == ["missing_label", "unseen_label"]
    unseen = next(r for r in quarantined if r["status"] == "unseen_label")
    assert unseen["error"] == "label 'label' value Maybe is not in the fit split" and unseen["split"] == "val"


@pytest.mark.parametrize("argv, message", [
    (["--categorical", "state,nope"], "--categorical: expected a column of the input, got 'nope'"),
    (["--numeric", "day_mins,state"], "--numeric: expected numbers in column 'state', got text such as"),
    (["--label-column", "nope"], "--label-column: expected a column of the input, got 'nope'"),
    (["--fit-split", "holdout"], "--fit-split: expected a split with ok rows (test, train, val), got 'holdout'"),
])
def test_bad_columns_are_usage_errors_and_write_nothing(spark, churn, tmp_path, argv, message):
    root, _, _ = churn
    args = {"--label-column": "churn", "--categorical": "intl_plan", **dict(zip(argv[::2], argv[1::2]))}
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        features(spark, "--input", root / "split", "--output", tmp_path / "f", *[x for kv in args.items() for x in kv])
    assert not (tmp_path / "f").exists() or not os.listdir(tmp_path / "f")


@pytest.fixture(scope="module")
def odd_table(spark, tmp_path_factory):
    """A CSV split without --label-column (its own `label` is kept as src_label): a numeric x with many
    zeros that decides the label, a column with text in some val rows, a category spelled __unknown__."""
    from sparkprep.split.flags import split_config
    from sparkprep.split.spark import run_split

    root = tmp_path_factory.mktemp("odd")
    lines = ["id,x,n,c,label"]
    for i in range(600):
        x = (-1, 0, 1)[i % 3]
        lines.append(f"u{i},{x},{i % 7},{('a', 'b', '__unknown__')[i % 3 if i % 5 else 0]},{int(x == 0)}")
    (root / "rows.csv").write_text("\n".join(lines) + "\n")
    run_split(spark, split_config(["--input", str(root / "rows.csv"), "--input-kind", "table", "--key-by",
                                   "column:id", "--output", str(root / "split")]))
    table = pq.read_table(str(root / "split")).to_pandas()
    val = table.index[table["split"] == "val"][:5]
    table.loc[val, "n"] = "n/a"  # text in val rows only
    os.makedirs(root / "edited")
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), str(root / "edited" / "part-0.parquet"))
    return root


def test_a_labels_column_kept_as_src_label_is_named_as_the_cause(spark, odd_table, tmp_path):
    with pytest.raises(UsageError, match="'label' is null in every ok row of it; jobs/split.py kept the input's "
                                         "own 'label' column as 'src_label'.*use --label-column src_label"):
        features(spark, "--input", odd_table / "split", "--output", tmp_path / "f", "--label-column", "label")


def test_libsvm_writes_numeric_zeros_so_xgboost_reads_the_csvs_values(spark, odd_table, tmp_path):
    """An absent libsvm index is a missing value to XGBoost: a numeric 0 must be written, or a model
    trained on the file sees 'missing' where serving sees 0."""
    import xgboost as xgb

    out = tmp_path / "f"
    features(spark, "--input", odd_table / "edited", "--output", out, "--label-column", "src_label",
                      "--categorical", "c", "--to", "libsvm,xgboost-csv")
    names = names_of(out)
    stored = libsvm_matrix(out / "libsvm" / "train" / "part-00000.libsvm", len(names))
    values = pd_values(out / "xgboost-csv" / "train" / "part-00000.csv")
    for row in range(values.shape[0]):
        columns = set(stored.indices[stored.indptr[row]:stored.indptr[row + 1]])
        wanted = {i for i in range(len(names)) if not np.isnan(values[row, i])}  # zeros too, one-hot ones too
        assert columns == wanted, (row, sorted(columns), sorted(wanted))
    assert np.allclose(stored.toarray(), np.nan_to_num(values))
    assert (values[:, names.index("x")] == stored.toarray()[:, names.index("x")]).all()
    labels = pd_labels(out / "xgboost-csv" / "train" / "part-00000.csv")
    from_file = xgb.DMatrix(stored, label=labels)  # as XGBoost reads libsvm: an absent index is missing
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3}, from_file, num_boost_round=10)
    serving = xgb.DMatrix(values)  # dense rows at serving time: 0 is 0, NaN is missing
    assert np.allclose(booster.predict(from_file), booster.predict(serving), atol=1e-6)
    zero = values[:, names.index("x")] == 0
    assert zero.any() and booster.predict(serving)[zero].mean() > 0.5  # x = 0 means label 1, and it learned it


def libsvm_matrix(path, width):
    """A libsvm file as a CSR matrix of the given width: stored entries only."""
    from scipy.sparse import csr_matrix

    data, indices, indptr = [], [], [0]
    for line in open(path).read().splitlines():
        for item in line.split()[1:]:
            i, v = item.split(":")
            indices.append(int(i))
            data.append(float(v))
        indptr.append(len(indices))
    return csr_matrix((data, indices, indptr), shape=(len(indptr) - 1, width))


def pd_labels(path):
    import pandas as pd

    return pd.read_csv(path, header=None).iloc[:, 0].to_numpy()


def pd_values(path):
    import pandas as pd

    return pd.read_csv(path, header=None).iloc[:, 1:].to_numpy(dtype=float)


def test_a_category_spelled_unknown_keeps_its_own_slot_and_text_in_val_keeps_a_column_numeric(
        spark, odd_table, tmp_path):
    out = tmp_path / "f"
    report = features(spark, "--input", odd_table / "edited", "--output", out, "--label-column", "src_label",
                      "--categorical", "c", "--to", "parquet")
    names = names_of(out)
    assert names[-4:] == ["c=__unknown__", "c=a", "c=b", "c=__unknown__2"] and len(set(names)) == len(names)
    assert json.loads((out / "category_maps.json").read_text())["c"] == {"__unknown__": 0, "a": 1, "b": 2,
                                                                         "__unknown__2": 3}
    assert json.loads((out / "feature_names.json").read_text())["unknown_slots"] == {"c": "__unknown__2"}
    table = pq.read_table(str(out / "parquet" / "train")).to_pandas()
    spelled = table["c=__unknown__"] == 1  # the rows whose category is literally __unknown__
    assert spelled.any() and (table.loc[spelled, "c=__unknown__2"] == 0).all()
    # text in five val rows of `n` does not make it an ignored column: only the fit split decides
    assert "n" in names and "n" not in report["features"]["ignored_columns"]
    assert report["features"]["text_outside_fit_split"] == {"n": 5}
