"""`scripts/package.py --lambda`: the zip runs on the Lambda runtime's Python with nothing else.

The zip's Pillow and numpy are manylinux wheels for Python 3.12 (the python3.12 Lambda runtime,
Amazon Linux 2023). The test unpacks it and runs it with a Python 3.12 that has no site-packages
at all (-I -S), so every import comes from the zip or the standard library, as in Lambda (whose
boto3 the handlers import only when they call S3).
"""

import glob
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest
from PIL import Image

from sparkprep.online import load_transform
from sparkprep.preprocess.transform import TransformSpec

REPO = pathlib.Path(__file__).resolve().parents[2]


def lambda_python():
    """A CPython 3.12 that runs (the default Lambda runtime the zip targets): pyenv's, or on PATH."""
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")))
    candidates += [shutil.which("python3.12")] if shutil.which("python3.12") else []
    found = next((c for c in candidates if subprocess.run(
        [c, "-c", "import sys; assert sys.version_info[:2] == (3, 12)"], capture_output=True).returncode == 0), None)
    if found is None:
        if os.environ.get("SPARKPREP_REQUIRE_LAMBDA_PYTHON") == "1":
            pytest.fail("no python3.12 to run the Lambda zip with (make test requires one)")
        pytest.skip("no python3.12 on this machine to run the Lambda zip with")
    return found


def test_the_lambda_zip_imports_both_handlers_and_gives_the_offline_bytes(tmp_path):
    python = lambda_python()
    built = subprocess.run([sys.executable, str(REPO / "scripts" / "package.py"), "--lambda", "--dest",
                            str(tmp_path / "lambda")], capture_output=True, text=True, check=True)
    record = json.loads((tmp_path / "lambda" / "lambda.json").read_text())
    assert f"{record['bytes'] / 2**20:.1f} MiB zipped" in built.stdout
    assert record["bytes"] < 50 * 2**20 and record["unzipped_bytes"] < 250 * 2**20  # Lambda's direct-upload limits
    assert not [m for m in record["sparkprep_modules"] if m.endswith("spark.py") or "/spark/" in m]
    with zipfile.ZipFile(tmp_path / "lambda" / record["zip"]) as archive:
        archive.extractall(tmp_path / "task")  # what Lambda unpacks into /var/task

    photo = io.BytesIO()
    Image.effect_mandelbrot((1000, 1000), (-2, -1.5, 1, 1.5), 60).convert("RGB").save(photo, "JPEG", quality=92)
    (tmp_path / "photo.jpg").write_bytes(photo.getvalue())
    spec = TransformSpec(size=(96, 96), mode="L")
    script = f"""
import json, sys
sys.path.insert(0, {str(tmp_path / 'task')!r})
import sparkprep.online.object_lambda, sparkprep.online.http
from sparkprep.online import load_transform
t = load_transform(json.loads({json.dumps(json.dumps(spec.record()))}))
sys.stdout.buffer.write(t(open({str(tmp_path / 'photo.jpg')!r}, "rb").read()))
assert not [m for m in sys.modules if m.split(".")[0] in ("pyspark", "pyarrow", "pandas", "boto3")]
"""
    ran = subprocess.run([python, "-I", "-S", "-c", script], capture_output=True, env={"PATH": os.environ["PATH"]})
    assert ran.returncode == 0, ran.stderr.decode()
    assert ran.stdout == load_transform(spec)(photo.getvalue())
