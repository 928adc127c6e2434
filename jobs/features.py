"""spark-submit jobs/features.py --input out/churn --output out/churn-features --label-column churn \\
    --categorical state,area_code,intl_plan --numeric auto --impute median --scale standard --to xgboost-csv,parquet

Fit imputation, one-hot encoding and scaling (a Spark ML Pipeline) on the train split of a tabular
split table only, apply it to every split, and write what SageMaker XGBoost (CSV, libsvm) and
AutoGluon (parquet) read, with the fitted PipelineModel in <output>/_model for serving.
"""

import sys

from sparkprep.cli import job_main


def main(argv=None, spark=None) -> int:
    return job_main("features", argv, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
