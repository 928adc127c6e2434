"""The same work as scripts/bench_preprocess.py's pool, on Ray Data or Daft (run by bench_preprocess --peers).

    /path/to/peers-venv/bin/python scripts/bench_peer.py ray|daft INPUT_DIR OUTPUT_DIR [--cpus 2]

Each image: sha256, Pillow draft decode, 224 px shorter-side crop (ImageOps.fit), JPEG q90;
rows (path, sha256, image) written as parquet. The per-image code is plain Pillow, the same
as the pool's; the engine reads the files, runs it in parallel on --cpus cores and writes.
Needs `pip install -r requirements-peers.txt` in a venv of its own (not sparkprep's).
"""

import argparse
import hashlib
import io
import sys

from PIL import Image, ImageOps


def resized(data: bytes) -> bytes:
    image = Image.open(io.BytesIO(data))
    image.draft("RGB", (224, 224))
    image = ImageOps.fit(image.convert("RGB"), (224, 224), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def run_ray(source: str, output: str, cpus: int) -> None:
    import ray

    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)

    def work(batch):
        return {"path": batch["path"], "sha256": [hashlib.sha256(d).hexdigest() for d in batch["bytes"]],
                "image": [resized(d) for d in batch["bytes"]]}

    ds = ray.data.read_binary_files(source, include_paths=True, file_extensions=["jpg"])
    ds.map_batches(work, batch_format="numpy", batch_size=64).write_parquet(output)


def run_daft(source: str, output: str, cpus: int) -> None:
    import daft
    import daft.functions

    @daft.udf(return_dtype=daft.DataType.binary())
    def image(column):
        return [resized(d) for d in column.to_pylist()]

    sha256 = _daft_sha256()
    df = daft.from_glob_path(f"{source.rstrip('/')}/**/*.jpg")
    df = df.with_column("bytes", daft.functions.download(df["path"]))
    df = df.select(df["path"], sha256(df["bytes"]).alias("sha256"), image(df["bytes"]).alias("image"))
    df.write_parquet(output)


def _daft_sha256():
    import daft

    @daft.udf(return_dtype=daft.DataType.string())
    def sha256(column):
        return [hashlib.sha256(d).hexdigest() for d in column.to_pylist()]

    return sha256


def run_daft_native(source: str, output: str, cpus: int) -> None:
    """Daft's own image functions (Rust): full decode, resize to 224x224 (no crop: Daft has no shorter-side
    crop), JPEG encode. Not the same per-image work as the others; reported beside them."""
    import daft
    import daft.functions as f

    df = daft.from_glob_path(f"{source.rstrip('/')}/**/*.jpg")
    df = df.with_column("bytes", f.download(df["path"]))
    image = f.resize(f.decode_image(df["bytes"], mode="RGB"), 224, 224)
    df = df.select(df["path"], _daft_sha256()(df["bytes"]).alias("sha256"), f.encode_image(image, "JPEG").alias("image"))
    df.write_parquet(output)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("engine", choices=("ray", "daft", "daft-native"))
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args(argv)
    runs = {"ray": run_ray, "daft": run_daft, "daft-native": run_daft_native}
    runs[args.engine](args.input, args.output, args.cpus)
    return 0


if __name__ == "__main__":
    sys.exit(main())
