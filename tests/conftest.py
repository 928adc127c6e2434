"""One session-scoped SparkSession for every Spark test, and the shared sample tree."""

import importlib.util
import json
import os
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
# Spark's Python workers must run this interpreter (the venv's), not the python3 on PATH.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
# S3 tests talk only to a moto server on 127.0.0.1: fake credentials, and no lookups of
# instance metadata (set before the Spark fixture starts, so its Python workers inherit them).
os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                   "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"})
for _name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
    os.environ.pop(_name, None)


def load_script(name):
    """Import scripts/<name>.py as a module (scripts/ is not a package; the scripts import each
    other by name, as they do when run from scripts/)."""
    if str(REPO / "scripts") not in sys.path:
        sys.path.append(str(REPO / "scripts"))
    spec = importlib.util.spec_from_file_location(f"script_{name}", REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_job(name):
    """jobs/<name>.py as a module: its main(argv, spark=...) is what spark-submit runs."""
    spec = importlib.util.spec_from_file_location(f"job_{name}", REPO / "jobs" / f"{name}.py")
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
        "spark.python.daemon.module": "sparkprep.spark.daemon",  # as conf/local.conf
    })
    yield session
    session.stop()


@pytest.fixture(scope="session")
def make_sample():
    return load_script("make_sample")


@pytest.fixture(scope="session")
def processed_sample(spark, sample_tree, tmp_path_factory):
    """The sample tree (EXIF, 16-bit, CMYK, palette, animation, bad files) preprocessed once per session
    at 32 px with 2 augmented copies of train and val rows: (table, run report). The online identity
    and export tests read it."""
    from sparkprep.preprocess.flags import preprocess_config
    from sparkprep.preprocess.spark import run_preprocess

    out = tmp_path_factory.mktemp("processed-sample") / "processed"
    report = run_preprocess(spark, preprocess_config([
        "--input", str(sample_tree), "--output", str(out), "--size", "32", "--augment", SAMPLE_AUGMENT,
        "--copies", "2", "--augment-splits", "train,val", "--seed", "5"]))
    return out, report


SAMPLE_AUGMENT = "hflip,crop:0.5,rotate:10,color:0.2,noise:3"


@pytest.fixture(scope="session")
def make_planted():
    """scripts/make_planted.py: real photos and their planted near-copies."""
    return load_script("make_planted")


@pytest.fixture(scope="session")
def sample_tree(tmp_path_factory, make_sample):
    """The demo sample: six classes, bad files, duplicates, unusual-but-valid images."""
    root = tmp_path_factory.mktemp("sample") / "mednist"
    make_sample.make_tree(str(root), per_class=12, with_bad=True)
    return root



CHURN_CATEGORICAL = "state,area_code,intl_plan,vmail_plan"


@pytest.fixture(scope="session")
def churn(spark, tmp_path_factory):
    """1,500 customers split by phone (80/10/10), then features fitted on train: all three outputs."""
    import importlib.util

    from sparkprep.features.flags import features_config
    from sparkprep.features.spark import run_features
    from sparkprep.split.flags import split_config
    from sparkprep.split.spark import run_split

    spec = importlib.util.spec_from_file_location("make_churn", REPO / "examples" / "churn" / "make_churn.py")
    make_churn = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_churn)
    root = tmp_path_factory.mktemp("churn")
    csv = make_churn.write_churn(str(root / "churn.csv"), 1500, seed=3)
    run_split(spark, split_config(["--input", csv, "--input-kind", "table", "--key-by", "column:phone",
                                   "--label-column", "churn", "--output", str(root / "split")]))
    out = root / "features"
    report = run_features(spark, features_config(["--input", str(root / "split"), "--output", str(out),
                                                   "--label-column", "churn", "--categorical", CHURN_CATEGORICAL,
                                                   "--scale", "standard", "--to", "xgboost-csv,libsvm,parquet"]))
    return root, out, report


def write_samples(make_sample, root, first, count, with_cls=True, mask=False):
    """<label>/s<i>.jpg + .json (+ .cls, + a .seg.png mask) samples, like a detection or WebDataset tree."""
    import io
    import json

    from PIL import Image

    for i in range(first, first + count):
        base = root / ("ant" if i % 2 else "bee") / f"s{i:03d}"
        make_sample.write(f"{base}.jpg", make_sample.jpeg_bytes(make_sample.synthetic_scan(i % 6, i)))
        make_sample.write(f"{base}.json", json.dumps({"boxes": [[i, i, 4, 4]] * (i % 3 + 1)}).encode())
        if with_cls:
            make_sample.write(f"{base}.cls", str(i % 2).encode())
        if mask:
            buffer = io.BytesIO()
            Image.new("L", (8, 8), i).save(buffer, "PNG")
            make_sample.write(f"{base}.seg.png", buffer.getvalue())


def spark_submit(job, *args, **kwargs):
    """Run the real `spark-submit jobs/<job>.py ...` (see scripts/local_submit.py)."""
    return load_script("local_submit").spark_submit(job, *args, **kwargs)


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3 API (moto's server mode) on 127.0.0.1, for the whole session."""
    import socket

    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


# `make test` builds .venv-mxnet (requirements-mxnet.txt) and sets this: there, a missing MXNet fails.
MXNET_PYTHON = REPO / ".venv-mxnet" / "bin" / "python"


def mxnet_read(*args):
    """Run tests/mxnet/read_recordio.py in the MXNet venv; its JSON output (or None for `write`).
    Skips where that venv was not built, unless SPARKPREP_REQUIRE_MXNET=1."""
    import json
    import subprocess

    if not MXNET_PYTHON.exists():
        if os.environ.get("SPARKPREP_REQUIRE_MXNET") == "1":
            pytest.fail(f"MXNet reader: {MXNET_PYTHON} is missing (`make test` builds it from requirements-mxnet.txt)")
        pytest.skip("MXNet venv not built (`make test` builds .venv-mxnet); RecordIO checked by the spec reader only")
    result = subprocess.run([str(MXNET_PYTHON), str(REPO / "tests" / "mxnet" / "read_recordio.py"), *map(str, args)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout) if result.stdout.strip() else None


def read_recordio_spec(data):
    """(offset, payload) of every record, read as dmlc-core's RecordIOReader::ReadRecord reads them
    (written from that reader, not from sparkprep's writer): a part of cflag 1 or 2 is followed by
    the magic word the writer dropped; cflag 0 or 3 ends a record; parts are padded to 4 bytes."""
    import struct

    magic = struct.pack("<I", 0xCED7230A)
    records, pos, start, current = [], 0, 0, b""
    while pos < len(data):
        assert data[pos:pos + 4] == magic, f"no magic at {pos}"
        (lrec,) = struct.unpack_from("<I", data, pos + 4)
        cflag, length = lrec >> 29, lrec & ((1 << 29) - 1)
        current += data[pos + 8:pos + 8 + length]
        pos += 8 + ((length + 3) >> 2 << 2)
        if cflag in (0, 3):
            records.append((start, current))
            start, current = pos, b""
        else:
            current += magic
    assert pos == len(data) and current == b""
    return records


def read_mds_spec(data):
    """The samples of an MDS shard, as a dict of column -> value, read as streaming's MDSReader reads them
    (written from streaming/base/format/mds/reader.py and writer.py, not from sparkprep's writer): uint32 sample
    count, uint32 offsets (count + 1), the config JSON up to the first offset, then each sample: a uint32 size per
    column without a fixed size, then the columns in order. int columns are int64, str utf-8; others stay bytes."""
    import struct

    (count,) = struct.unpack_from("<I", data, 0)
    offsets = struct.unpack_from(f"<{count + 1}I", data, 4)
    config = json.loads(data[4 + 4 * (count + 1):offsets[0]])
    assert offsets[-1] == len(data), "the last offset is the shard's end"
    samples = []
    for begin, end in zip(offsets, offsets[1:]):
        sample, sizes, pos = {}, [], begin
        for size in config["column_sizes"]:
            if size is None:
                (size,) = struct.unpack_from("<I", data, pos)
                pos += 4
            sizes.append(size)
        for name, encoding, size in zip(config["column_names"], config["column_encodings"], sizes):
            value = data[pos:pos + size]
            sample[name] = (struct.unpack("<q", value)[0] if encoding == "int" else
                            value.decode("utf-8") if encoding == "str" else value)
            pos += size
        assert pos == end
        samples.append(sample)
    return config, samples
