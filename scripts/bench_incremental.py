"""Benchmark `pipeline --incremental` against a full pipeline run on the same final input, side by side.

    .venv/bin/pip install -r requirements-bench.txt      # scikit-image, for its photos
    .venv/bin/python scripts/bench_incremental.py [--sizes 2000,4000] [--growth 0.1] [--changed 5] [--deleted 5]
                                                  [--repeat 3] [--to imagefolder|webdataset] [--shard-size 16MB]
                                                  [--input webdataset --per-shard 100]

The photos are bench_preprocess.py's (scikit-image's pictures, cropped, 640-1024 px, JPEG q90).
For each size N, in a work tree of N photos (hard links):
  1. `pipeline --incremental` once: the previous output;
  2. the tree grows by growth x N new photos, `changed` photos get new bytes, `deleted` go;
  3. `pipeline --incremental` again (timed), then a full `pipeline` into another output on the
     same final tree (timed), one after the other.
Printed per size: both wall times and their ratio; the images the incremental run transformed
(each decoded once) against the full run's; and whether both tables of the two outputs are equal
row for row (digest_outputs.table_digest). With --to imagefolder or webdataset both runs export too: the
files (or shards) the incremental export wrote are printed against those in the export, and both exports
must hold the same content (ImageFolder: the same files and bytes; WebDataset: the same members and bytes,
whichever shard holds them). With --input webdataset the tree is packed into shards of --per-shard samples
(pack): the growth adds shards of new photos and writes again the shards whose photos changed or went. Across
the two sizes, the marginal ratio
(t_inc(N2) - t_inc(N1)) / (t_full(N2) - t_full(N1)) cancels JVM start-up and fixed costs. With
--repeat R, the whole measurement runs R times and each time is the median of its R runs.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import pathlib
import shutil
import statistics
import sys
import tarfile
import time

from bench_preprocess import corpus_of, make_corpus
from digest_outputs import table_digest
from local_submit import timed_spark_submit

FLAGS = ("--size", "224", "--seed", "7")


def work_tree(photos: pathlib.Path, tree: pathlib.Path, count: int) -> list:
    """tree holds the first `count` photos of `photos` (hard links); returns the others, in order."""
    shutil.rmtree(tree, ignore_errors=True)
    every = sorted(photos.rglob("*.jpg"), key=lambda p: p.name)
    for path in every[:count]:
        target = tree / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, target)
    return every[count:]


def grow(tree: pathlib.Path, spare: list, new: int, changed: int, deleted: int, scratch: pathlib.Path) -> None:
    """new photos from `spare`; `changed` photos replaced by other photos' bytes (new files, not links:
    the corpus stays as it was); `deleted` photos removed. Spread over the tree, deterministic."""
    for path in spare[:new]:
        target = tree / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, target)
    present = sorted(tree.rglob("*.jpg"), key=lambda p: p.name)
    step = max(1, len(present) // (changed + deleted + 1))
    picked = present[::step][:changed + deleted]
    shutil.rmtree(scratch, ignore_errors=True)
    make_corpus(scratch, changed)  # the corpus generator's first photos: other bytes than the ones replaced
    replacements = sorted(scratch.rglob("*.jpg"), key=lambda p: p.name)
    for path, other in zip(picked[:changed], replacements):
        path.unlink()  # a hard link: never write through it into the corpus
        path.write_bytes(other.read_bytes() + b"\0" * (1 + len(path.name) % 7))  # bytes after EOI: still valid
    for path in picked[changed:]:
        path.unlink()


def pack(tree: pathlib.Path, shards: pathlib.Path, per_shard: int) -> int:
    """The tree as WebDataset shards, grown as such datasets grow: a photo packed before stays in its shard;
    new photos go to new shards; a shard is written again only when a photo of it changed or went. Each
    sample is <label>_<name>.jpg and .cls. Returns how many shards were written."""
    placed_file = shards / "_placed.json"
    placed = json.loads(placed_file.read_text()) if placed_file.exists() else {}  # key -> [shard, sha256]
    now = {f"{p.parent.name}_{p.stem}": p for p in sorted(tree.rglob("*.jpg"), key=lambda p: p.name)}
    digests = {key: hashlib.sha256(path.read_bytes()).hexdigest() for key, path in now.items()}
    members = {}
    for key, (shard, _) in placed.items():
        if key in now:
            members.setdefault(shard, []).append(key)
    stale = {shard for key, (shard, digest) in placed.items() if digests.get(key) != digest}
    new = [key for key in now if key not in placed]
    first = max((shard for shard, _ in placed.values()), default=-1) + 1
    for index in range(0, len(new), per_shard):
        members[first + index // per_shard] = new[index:index + per_shard]
        stale.add(first + index // per_shard)
    shards.mkdir(parents=True, exist_ok=True)
    for shard in sorted(stale):
        target = shards / f"part-{shard:05d}.tar"
        if not members.get(shard):
            target.unlink(missing_ok=True)
            continue
        with tarfile.open(target, "w") as tar:
            for key in members[shard]:
                for suffix, data in (("jpg", now[key].read_bytes()), ("cls", now[key].parent.name.encode())):
                    info = tarfile.TarInfo(f"{key}.{suffix}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    placed = {key: [shard, digests[key]] for shard, keys in members.items() for key in keys}
    placed_file.write_text(json.dumps(placed))
    return len(stale)


def report(out: pathlib.Path) -> dict:
    return json.loads((out / "_run_report.json").read_text())


def one_size(photos: pathlib.Path, base: pathlib.Path, count: int, args) -> dict:
    tree, inc, full = base / "tree", base / f"inc{count}", base / f"full{count}"
    for out in (inc, full):
        shutil.rmtree(out, ignore_errors=True)
    spare = work_tree(photos, tree, count)
    new = round(args.growth * count)
    if len(spare) < new:
        sys.exit(f"{photos} has {count + len(spare)} photos; {count} + {new} are needed")
    flags = (*FLAGS, "--to", args.to) if args.to else FLAGS
    if args.to and args.to != "imagefolder":
        flags += ("--shard-size", args.shard_size)
    source = tree
    if args.input == "webdataset":  # the same photos as WebDataset shards (pack), read as such
        source = base / "shards"
        shutil.rmtree(source, ignore_errors=True)
        pack(tree, source, args.per_shard)
        flags += ("--input-kind", "webdataset")
    timed_spark_submit("pipeline", "--input", source, "--output", inc, "--incremental", *flags)
    grow(tree, spare, new, args.changed, args.deleted, base / "scratch")
    shards_written = pack(tree, source, args.per_shard) if args.input == "webdataset" else None
    t_inc = timed_spark_submit("pipeline", "--input", source, "--output", inc, "--incremental", *flags)
    t_full = timed_spark_submit("pipeline", "--input", source, "--output", full, *flags)
    inc_processed = report(inc / "processed")["incremental"]
    full_rows = report(full / "processed")["rows"]
    equal = all(table_digest(inc / t, inc)["sha256"] == table_digest(full / t, full)["sha256"]
                for t in ("splits", "processed"))
    result = {"files": count, "final_files": inc_processed["listed"], "incremental_s": round(t_inc, 2),
              "full_s": round(t_full, 2), "ratio": round(t_inc / t_full, 3),
              "transformed": inc_processed["transformed"], "kept": inc_processed["kept"],
              "deleted": inc_processed["deleted"], "full_transformed": full_rows,
              "decoded_fraction": round(inc_processed["transformed"] / full_rows, 4), "tables_equal": equal}
    if shards_written is not None:
        read = report(inc / "splits")["incremental"]
        result.update({"shards_written": shards_written, "shards_read": read["read"], "shards": read["listed"]})
    if args.to:  # the export: files (shards) written against all of them, and the same content as a full export's
        exported = report(inc)["stages"][args.to]
        result.update({"export_written": exported["incremental"]["written"], "export_files": exported["output"]["files"],
                       "export_removed": exported["incremental"]["removed"],
                       "tables_equal": equal and exported_content(inc / args.to) == exported_content(full / args.to)})
    return result


def exported_content(folder: pathlib.Path) -> dict:
    """What an export holds, whatever its placement: ImageFolder's files (the manifest's checksums), or each
    WebDataset member's sha256 by member name (a sample may sit in another shard than a full export puts it)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    if "file_sha256" in manifest:
        return manifest["file_sha256"]
    members = {}
    for shard in sorted(folder.glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                assert member.name not in members, f"{member.name} is in two shards"
                members[member.name] = hashlib.sha256(tar.extractfile(member).read()).hexdigest()
    return members


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2000,4000")
    parser.add_argument("--growth", type=float, default=0.1)
    parser.add_argument("--changed", type=int, default=5)
    parser.add_argument("--deleted", type=int, default=5)
    parser.add_argument("--base", default="bench/incremental")
    parser.add_argument("--photos", default="bench", help="where bench_preprocess.py keeps photos<N>")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--to", choices=("imagefolder", "webdataset"),
                        help="export as well (incremental: new and changed files, or shards)")
    parser.add_argument("--shard-size", default="16MB", help="with --to webdataset (so that a split has many shards)")
    parser.add_argument("--input", choices=("files", "webdataset"), default="files",
                        help="webdataset: the photos packed into shards of --per-shard samples, grown as such")
    parser.add_argument("--per-shard", type=int, default=100)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    base = pathlib.Path(args.base)
    photos = corpus_of(pathlib.Path(args.photos), max(round(s * (1 + args.growth)) + 1 for s in sizes))
    started = time.perf_counter()
    rounds = [[one_size(photos, base, n, args) for n in sizes] for _ in range(args.repeat)]
    results = []
    for runs in zip(*rounds):  # per size: the median of each time over the rounds
        median = dict(runs[0])
        for name in ("incremental_s", "full_s"):
            median[name] = statistics.median(r[name] for r in runs)
        median["ratio"] = round(median["incremental_s"] / median["full_s"], 3)
        median["tables_equal"] = all(r["tables_equal"] for r in runs)
        median["rounds"] = [[r["incremental_s"], r["full_s"]] for r in runs]
        results.append(median)
    for r in results:
        print(f"{r['files']} files + {args.growth:.0%}, {args.changed} changed, {args.deleted} deleted: incremental "
              f"{r['incremental_s']} s, full {r['full_s']} s, ratio {r['ratio']}; transformed {r['transformed']} of "
              f"{r['full_transformed']} ({r['decoded_fraction']:.1%}); tables equal: {r['tables_equal']}"
              + (f"; {args.to}: {r['export_written']} of {r['export_files']} files written, {r['export_removed']} "
                 "removed; content equal to the full export's: see tables equal" if args.to else "")
              + (f"; shards: {r['shards_written']} written by the growth, {r['shards_read']} of {r['shards']} read"
                 if "shards" in r else ""))
    summary = {"runs": results, "seconds": round(time.perf_counter() - started, 1)}
    if len(results) >= 2:
        a, b = results[0], results[-1]
        summary["marginal_ratio"] = round((b["incremental_s"] - a["incremental_s"]) / (b["full_s"] - a["full_s"]), 3)
        print(f"marginal ratio {a['files']} -> {b['files']} files (JVM start-up cancels): {summary['marginal_ratio']}")
    print(json.dumps(summary, indent=2))
    return 0 if all(r["tables_equal"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
