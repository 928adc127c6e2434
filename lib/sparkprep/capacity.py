"""The capacity model behind --plan and docs/capacity.md: hours and dollars for an input, from
per-core costs measured on this project's machine (docs/performance.md).

Pure: counts in, an estimate out. A vCPU of the named instance is taken to do what one core of
the measuring machine did (both are one hyperthread of a server CPU); the figures below say where
each number was measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

MB = 1 << 20


@dataclass(frozen=True)
class Instance:
    vcpus: int
    memory_gib: int
    network_mb_s: int   # sustained (baseline) bandwidth, not the "up to" burst
    ec2_per_hour: float  # us-east-1 on-demand list price, USD
    emr_per_hour: float  # the EMR fee on top


# List prices (us-east-1, Linux, on-demand) as published by AWS when this table was written;
# check them before a budget rests on them: --plan-price overrides the hourly total.
INSTANCES: Dict[str, Instance] = {
    "m5.4xlarge": Instance(16, 64, 600, 0.768, 0.192),
    "c5.4xlarge": Instance(16, 32, 600, 0.680, 0.170),
    "r5.4xlarge": Instance(16, 128, 600, 1.008, 0.252),
    "m5.12xlarge": Instance(48, 192, 1500, 2.304, 0.270),
}
DEFAULT_INSTANCE = "m5.4xlarge"

# Measured per-core costs (docs/performance.md; 0.1035 MiB = the 106 KB mean photo of bench_preprocess).
PHOTO_MB = 106_000 / MB
INGEST_MS_PER_FILE = 2 / 1036 * 1000         # split, 20,004 small JPEGs, header validation: 1,036 files/s on 2 cores
HASH_MS_PER_MB = 0.067 / PHOTO_MB            # sha256, one process
PHASH_MS_PER_MB = 1.10 / PHOTO_MB            # the 1/8-scale decode for phash
PHASH_V2_MS_PER_MB = 0.41 / PHOTO_MB         # the pipeline's phash-v2, from the transform's decode
DECODE_MS_PER_MB = 1.418 / PHOTO_MB          # draft (DCT-scaled) decode to >= 224 px
PIPELINE_FIXED_MS = 3.23 - 0.067 - 1.418     # resize, encode, Arrow and parquet per image (pipeline CPU 3.23 ms)
GET_MS_PER_OBJECT = 1000 / 261               # scripts/bench_fetch.py: 261 objects/s per task at +20 ms per GET
DRIVER_BYTES_PER_LISTED_FILE = 400           # a listed (uri, size) in the driver's Python list, and its relative path
LIST_KEYS_PER_SECOND = 1000 / 0.08           # one LIST call returns 1,000 keys, ~80 ms each, one after another
S3_GETS_PER_PREFIX = 5500                    # S3's documented GET rate per prefix
FIXED_HOURS = 0.25                           # cluster start-up, the checks and report aggregates, publish


@dataclass(frozen=True)
class Workload:
    files: int
    bytes: int
    job: str = "split"            # split | ingest (header probe) or pipeline (decode, resize, encode)
    from_s3: bool = True          # the workers GET every object (a manifest, or s3:// without s3a)
    listed_on_driver: bool = False  # a folder listed by the driver (no --manifest)
    phash: bool = True


def estimate(work: Workload, nodes: int, instance: str = DEFAULT_INSTANCE,
             price_per_hour: float = 0.0) -> dict:
    """Hours, dollars and the limits that bite first for `work` on `nodes` core nodes (plus one primary)."""
    node = INSTANCES[instance]
    mb_each = work.bytes / MB / max(1, work.files)
    cpu_ms = (INGEST_MS_PER_FILE + HASH_MS_PER_MB * mb_each) if work.job != "pipeline" else \
        (PIPELINE_FIXED_MS + (HASH_MS_PER_MB + DECODE_MS_PER_MB) * mb_each)
    if work.phash:
        cpu_ms += (PHASH_V2_MS_PER_MB if work.job == "pipeline" else PHASH_MS_PER_MB) * mb_each
    core_ms = cpu_ms + (GET_MS_PER_OBJECT if work.from_s3 else 0.0)
    cores = nodes * node.vcpus
    compute_hours = work.files * core_ms / 1000 / cores / 3600
    network_hours = work.bytes / MB / (nodes * node.network_mb_s) / 3600
    listing_hours = work.files / LIST_KEYS_PER_SECOND / 3600 if work.listed_on_driver else 0.0
    hours = FIXED_HOURS + listing_hours + max(compute_hours, network_hours)
    hourly = price_per_hour or (node.ec2_per_hour + node.emr_per_hour)
    get_rate = cores * 1000 / core_ms if work.from_s3 else 0.0
    return {
        "files": work.files, "bytes": work.bytes, "mean_mb": round(mb_each, 3), "job": work.job,
        "nodes": nodes, "instance": instance, "vcpus": cores, "price_per_node_hour": round(hourly, 4),
        "core_ms_per_file": round(core_ms, 3),
        "hours": {"total": round(hours, 2), "compute": round(compute_hours, 2), "network": round(network_hours, 2),
                  "listing": round(listing_hours, 2), "fixed": FIXED_HOURS},
        "bound_by": "network" if network_hours > compute_hours else ("GET latency" if work.from_s3 and
                                                                      GET_MS_PER_OBJECT > cpu_ms else "CPU"),
        "dollars": round(hours * (nodes + 1) * hourly, 2),
        "get_per_second": round(get_rate),
        "limits": limits(work, get_rate),
    }


def limits(work: Workload, get_rate: float) -> List[str]:
    """What bites first at this size, and what removes it."""
    found = []
    if work.listed_on_driver and work.files >= 1_000_000:
        found.append(f"driver listing: ~{work.files * DRIVER_BYTES_PER_LISTED_FILE / 1e9:.1f} GB of driver memory "
                     f"and ~{work.files / LIST_KEYS_PER_SECOND / 3600:.1f} h of sequential LIST calls for "
                     f"{work.files:,} files; --manifest (an S3 Inventory report) removes both")
    if get_rate > S3_GETS_PER_PREFIX:
        prefixes = -(-int(get_rate) // S3_GETS_PER_PREFIX)
        found.append(f"S3 request rate: ~{get_rate:,.0f} GET/s against {S3_GETS_PER_PREFIX:,}/s per prefix; keys "
                     f"spread over >= {prefixes} prefixes keep it, else S3 answers 503 SlowDown and the fetcher's "
                     "adaptive retries slow the job to what the prefix allows")
    if work.files > 20_000_000:
        partitions = -(-work.files // 200_000)
        found.append(f"shuffle: the duplicate, leakage and near-duplicate checks group {work.files:,} keys; set "
                     f"spark.sql.shuffle.partitions >= {partitions:,} (~200k rows each) so no task spills")
    return found


def plan_text(plan: dict) -> str:
    """The table --plan prints."""
    h = plan["hours"]
    lines = [f"== plan: {plan['job']} of {plan['files']:,} files, {plan['bytes'] / 1e12:.2f} TB "
             f"({plan['mean_mb']:.2f} MiB each) ==",
             f"cluster: {plan['nodes']} x {plan['instance']} ({plan['vcpus']} vCPUs) + 1 primary, "
             f"${plan['price_per_node_hour']:.3f} per node-hour (EC2 + EMR, on demand)",
             f"per file: {plan['core_ms_per_file']:.2f} ms of one vCPU (measured per-core costs, docs/capacity.md)",
             f"hours: {h['total']:.2f} (compute {h['compute']:.2f}, network {h['network']:.2f}, "
             f"driver listing {h['listing']:.2f}, fixed {h['fixed']:.2f}); bound by {plan['bound_by']}",
             f"cost: ${plan['dollars']:,.2f}"]
    if plan["get_per_second"]:
        lines.append(f"S3 GETs: ~{plan['get_per_second']:,}/s")
    lines += [f"limit: {text}" for text in plan["limits"]] or ["limit: none expected at this size"]
    return "\n".join(lines)
