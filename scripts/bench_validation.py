"""What the default validation's end check costs: probe_image with and without it, per file.

    .venv/bin/python scripts/bench_validation.py [--files 20000]

On the MedNIST-like corpus of scripts/bench_split.py (64x64 JPEGs and PNGs, made once under
bench/), in one process: the end check alone, the header probe with the check switched
off, and the header probe with it (what `--validate header` runs), as CPU microseconds per file.
"""

from __future__ import annotations

import argparse
import sys
import time

import local_submit
import make_sample

from sparkprep.images import probe as image_probe


def without_end_check(data: bytes) -> None:
    """probe_image as it was before the end check: the same code with the check switched off."""
    check, image_probe.missing_end = image_probe.missing_end, lambda data, fmt: None
    try:
        image_probe.probe_image(data)
    finally:
        image_probe.missing_end = check


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20000)
    args = parser.parse_args(argv)
    per_class = -(-args.files // 6)
    root = local_submit.REPO / "bench" / f"mednist{per_class * 6 // 1000}k"
    if not root.exists():
        make_sample.main(["--per-class", str(per_class), "--no-bad", str(root)])
    files = [p for p in sorted(root.rglob("*")) if p.suffix.lower() in (".jpg", ".jpeg", ".png")][:args.files]
    datas = [p.read_bytes() for p in files]
    formats = ["JPEG" if d[:2] == b"\xff\xd8" else "PNG" for d in datas]
    timings = {}
    for name, work in (("end check alone", lambda: [image_probe.missing_end(d, f) for d, f in zip(datas, formats)]),
                       ("header probe, end check switched off", lambda: [without_end_check(d) for d in datas]),
                       ("header probe with end check (--validate header)",
                        lambda: [image_probe.probe_image(d) for d in datas])):
        started = time.process_time()
        work()
        timings[name] = (time.process_time() - started) / len(datas) * 1e6
        print(f"{name:50s} {timings[name]:7.2f} us per file ({len(datas)} files)")
    share = timings["end check alone"] / timings["header probe with end check (--validate header)"]
    print(f"the end check is {share:.1%} of the header validation's CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
