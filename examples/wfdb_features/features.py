"""Per-record features from WFDB .dat + .hea pairs, for `jobs/map.py --samples basename`.

    spark-submit --py-files examples/wfdb_features/features.py jobs/map.py \
        --input out/records-split --output out/record-features \
        --map features:extract --schema "signal string, fs double, hr double, qrs_ms double"

A sample is one record: its `hea` (the header) and `dat` (the signal) members. wfdb reads
records from files, so the two members are written under their own names into a
temporary directory first (the header names its .dat file).
"""

import os
import tempfile

import numpy as np
import wfdb


def extract(sample):
    """signal names, sampling rate, heart rate (beats/min) and mean QRS width (ms) of channel 0."""
    record_name = sample["__key__"].rsplit("/", 1)[-1]
    with tempfile.TemporaryDirectory() as directory:
        for member in ("hea", "dat"):
            with open(os.path.join(directory, f"{record_name}.{member}"), "wb") as handle:
                handle.write(sample[member])
        record = wfdb.rdrecord(os.path.join(directory, record_name))
    signal = record.p_signal[:, 0]
    peaks, widths = beats(signal, record.fs)
    seconds = len(signal) / record.fs
    return {
        "signal": ",".join(record.sig_name),
        "fs": float(record.fs),
        "hr": float(len(peaks) * 60.0 / seconds),
        "qrs_ms": float(np.mean(widths) * 1000.0 / record.fs) if widths else 0.0,
    }


def beats(signal, fs):
    """R peaks (local maxima above half the signal's range) and their widths at half height, in samples."""
    low, high = float(np.min(signal)), float(np.max(signal))
    threshold = low + (high - low) / 2
    above = signal > threshold
    starts = np.flatnonzero(above[1:] & ~above[:-1]) + 1
    ends = np.flatnonzero(~above[1:] & above[:-1]) + 1
    if above[0]:
        starts = np.insert(starts, 0, 0)
    ends = ends[ends > starts[0]] if len(starts) else ends
    pairs = list(zip(starts, ends))
    peaks = [int(s + np.argmax(signal[s:e])) for s, e in pairs if e > s]
    return peaks, [int(e - s) for s, e in pairs if e > s]
