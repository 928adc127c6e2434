"""Write a tiny synthetic WFDB record set: <root>/p<patient>/<patient>-<n>.dat + .hea.

    python examples/wfdb_features/make_records.py data/records --patients 4 --records 3

Each record is two channels at 250 Hz: an ECG-like train of narrow spikes at a heart rate
that depends on the patient and record, and a slow respiration wave. Written with
wfdb.wrsamp, so the files are real WFDB format 16.
"""

import argparse
import os
import sys

import numpy as np
import wfdb

FS = 250


def ecg(hr: float, seconds: float, qrs_ms: float) -> np.ndarray:
    """Gaussian spikes of about qrs_ms width at hr beats per minute, plus a little baseline."""
    t = np.arange(int(seconds * FS)) / FS
    period = 60.0 / hr
    phase = (t % period) - period / 2
    sigma = qrs_ms / 1000.0 / 2.355
    return np.exp(-0.5 * (phase / sigma) ** 2) + 0.05 * np.sin(2 * np.pi * 0.3 * t)


def make_records(root: str, patients: int, records: int, seconds: float = 10.0) -> list:
    """Write the records; returns their paths without extension."""
    written = []
    for p in range(patients):
        folder = os.path.join(root, f"p{p:03d}")
        os.makedirs(folder, exist_ok=True)
        for r in range(records):
            name = f"p{p:03d}-{r:04d}"
            hr, qrs = 55.0 + 7 * p + 3 * r, 80.0 + 10 * r
            channels = np.column_stack([ecg(hr, seconds, qrs), 0.5 * np.sin(2 * np.pi * 0.25 * np.arange(
                int(seconds * FS)) / FS)])
            wfdb.wrsamp(name, fs=FS, units=["mV", "mV"], sig_name=["ECG", "RESP"], p_signal=channels,
                        fmt=["16", "16"], write_dir=folder)
            written.append(os.path.join(folder, name))
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root")
    parser.add_argument("--patients", type=int, default=4)
    parser.add_argument("--records", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"{len(make_records(args.root, args.patients, args.records))} records under {args.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
