"""One session-scoped SparkSession for every Spark test, and the shared sample tree."""

import importlib.util
import os
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
# Spark's Python workers must run this interpreter (the venv's), not the python3 on PATH.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


def load_script(name):
    """Import scripts/<name>.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"script_{name}", REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def spark():
    from sparkprep.spark.session import build_session

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    session = build_session("tests", {
        "spark.master": "local[2]",
        "spark.sql.shuffle.partitions": "4",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
    })
    yield session
    session.stop()


@pytest.fixture(scope="session")
def make_sample():
    return load_script("make_sample")


@pytest.fixture(scope="session")
def sample_tree(tmp_path_factory, make_sample):
    """The demo sample: six classes, bad files, duplicates, unusual-but-valid images."""
    root = tmp_path_factory.mktemp("sample") / "mednist"
    make_sample.make_tree(str(root), per_class=12, with_bad=True)
    return root



def spark_submit(job, *args, **kwargs):
    """Run the real `spark-submit jobs/<job>.py ...` (see scripts/local_submit.py)."""
    return load_script("local_submit").spark_submit(job, *args, **kwargs)
