"""Online latency per 1 MP JPEG: p50 and p99 over N calls (default 1,000), one core.

1. `t(raw)`: the default recipe (224 px shorter-side crop, RGB, jpeg:90), with the reduced-scale
   JPEG decode (draft, the default) and without it.
2. The S3 Object Lambda handler end to end: presigned GET of the original from a loopback HTTP
   server, the transform, and WriteGetObjectResponse through boto3 to the same server.
3. The cold start a Lambda pays once: importing the handler and loading the recipe.

The photos are scikit-image's (chelsea, coffee, rocket, astronaut, hubble) resized to 1155x866.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pathlib
import statistics
import subprocess
import sys
import threading
import time

from PIL import Image

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

SIZE = (1155, 866)  # 1.0 MP


def photos():
    from skimage import data

    out = []
    for name in ("chelsea", "coffee", "rocket", "astronaut", "hubble_deep_field"):
        buffer = io.BytesIO()
        Image.fromarray(getattr(data, name)()).convert("RGB").resize(SIZE, Image.Resampling.LANCZOS).save(
            buffer, "JPEG", quality=90)
        out.append((name, buffer.getvalue()))
    return out


def percentiles(seconds):
    ordered = sorted(seconds)
    pick = lambda q: ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]  # noqa: E731
    return {"p50_ms": round(pick(0.50) * 1e3, 2), "p99_ms": round(pick(0.99) * 1e3, 2),
            "mean_ms": round(statistics.fmean(ordered) * 1e3, 2), "calls": len(ordered)}


def timed(call, inputs, calls):
    for item in inputs:  # warm: first calls load codecs
        call(item)
    seconds = []
    for i in range(calls):
        item = inputs[i % len(inputs)]
        start = time.perf_counter()
        call(item)
        seconds.append(time.perf_counter() - start)
    return percentiles(seconds)


def bench_handler(images, calls):
    """The Object Lambda handler against the tests' loopback server (both S3 sides on 127.0.0.1)."""
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_EC2_METADATA_DISABLED": "true"})
    from loopback_s3 import LoopbackS3, object_lambda_event

    from sparkprep.online import object_lambda
    from sparkprep.preprocess.transform import TransformSpec

    server = LoopbackS3({name: data for name, data in images})
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.environ["AWS_ENDPOINT_URL_S3"] = server.url
    payload = json.dumps({"transform": TransformSpec().record()})
    events = [object_lambda_event(server, name, "", payload) for name, _ in images]

    def call(event):
        assert object_lambda.handler(event) == {"status_code": 200}
        server.responses.clear()

    try:
        return timed(call, events, calls)
    finally:
        server.shutdown()
        server.server_close()


def cold_start():
    script = ("import time; start = time.perf_counter(); import sparkprep.online.object_lambda; "
              "from sparkprep.online import load_transform; from sparkprep.preprocess.transform import TransformSpec; "
              "load_transform(TransformSpec()); print(time.perf_counter() - start)")
    runs = [float(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout)
            for _ in range(5)]
    return {"import_and_load_ms": round(statistics.median(runs) * 1e3, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args(argv)
    from sparkprep.online import load_transform
    from sparkprep.preprocess.transform import TransformSpec

    images = photos()
    raws = [data for _, data in images]
    results = {
        "photo": f"{SIZE[0]}x{SIZE[1]} JPEG q90, {statistics.fmean(len(r) for r in raws) / 1024:.0f} KiB mean",
        "transform (draft on, default)": timed(load_transform(TransformSpec()), raws, args.calls),
        "transform (draft off)": timed(load_transform(TransformSpec(draft=False)), raws, args.calls),
        "object lambda handler, loopback": bench_handler(images, args.calls),
        "cold start": cold_start(),
    }
    for name, figures in results.items():
        print(f"{name:34s} {figures}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
