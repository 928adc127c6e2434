"""What a run prints and records: a line per stage, the versions that shaped the output, the config
as JSON, and the summary table each job prints at the end. Pure Python.
"""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import fields
from typing import Any, Callable, Dict, List, Optional

from sparkprep import __version__
from sparkprep.uris import redact_uri


def config_dict(cfg: Any) -> Dict[str, Any]:
    """A job config as JSON-ready values for reports and manifests, URIs without user-info."""
    out: Dict[str, Any] = {}
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if hasattr(value, "as_dict"):
            out[f.name] = value.as_dict()
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        elif value is None or isinstance(value, (bool, int, float)):
            out[f.name] = value
        else:  # strings, and values spelled as their flag (a KeySpec)
            out[f.name] = redact_uri(str(value))
    return out


class StageClock:
    """Prints one line per stage as it starts and records each stage's duration, and with a job
    counter (sparkprep.spark.session.job_counter), the Spark jobs each stage started."""

    def __init__(self, job: str, out=None, jobs: Optional[Callable[[], int]] = None):
        self.job, self._out = job, out  # None: whatever sys.stderr is when a line is printed
        self.started = time.perf_counter()
        self.durations: Dict[str, float] = {}
        self.jobs_by_stage: Dict[str, int] = {}
        self._current: Optional[str] = None
        self._since = self.started
        self._jobs = jobs
        self._jobs_at_start = self._jobs_since = jobs() if jobs else 0

    def stage(self, name: str, detail: str = "") -> None:
        self._close()
        self._current, self._since = name, time.perf_counter()
        self._jobs_since = self._jobs() if self._jobs else 0
        elapsed = self._since - self.started
        print(f"[{self.job} {elapsed:7.1f}s] {name}{': ' + detail if detail else ''}", file=self.out, flush=True)

    @property
    def out(self):
        return self._out or sys.stderr

    def note(self, text: str) -> None:
        """A line within the current stage (progress), without starting a new one."""
        elapsed = time.perf_counter() - self.started
        print(f"[{self.job} {elapsed:7.1f}s]   {text}", file=self.out, flush=True)

    def _close(self) -> None:
        if self._current:
            # a stage name met again (each table's "counting the written table") adds up
            spent = time.perf_counter() - self._since + self.durations.get(self._current, 0.0)
            self.durations[self._current] = round(spent, 3)
            if self._jobs:
                started = self._jobs() - self._jobs_since
                self.jobs_by_stage[self._current] = self.jobs_by_stage.get(self._current, 0) + started
            self._current = None

    def total(self) -> float:
        self._close()
        return round(time.perf_counter() - self.started, 3)

    def spark_jobs(self) -> Optional[Dict[str, Any]]:
        """The Spark jobs this run started so far, in all and per stage (None without a counter).

        Jobs started by other threads of the application (another run in a shared session) count too.
        """
        if not self._jobs:
            return None
        self._close()
        return {"total": self._jobs() - self._jobs_at_start,
                "by_stage": {name: n for name, n in self.jobs_by_stage.items() if n}}


def versions(spark_version: str) -> Dict[str, str]:
    """Versions that shaped the output, for the report."""
    import PIL
    import pyarrow

    return {"sparkprep": __version__, "spark": spark_version, "python": platform.python_version(),
            "pillow": PIL.__version__, "pyarrow": pyarrow.__version__}


def nested_counts(rows: List[tuple]) -> Dict[str, Dict[str, int]]:
    """[(split, label, n)] -> {split: {label: n}}, with None spelled '(none)'."""
    out: Dict[str, Dict[str, int]] = {}
    for split, label, n in rows:
        out.setdefault(str(split), {})[label if label is not None else "(none)"] = int(n)
    return {s: dict(sorted(labels.items())) for s, labels in sorted(out.items())}


def summary_table(report: dict) -> str:
    """Human-readable summary: split x label counts, quarantine, duplicates, speed."""
    if "plan" in report:
        from sparkprep.capacity import plan_text

        return plan_text(report["plan"])
    counts = report["counts"]
    splits = list(counts)
    labels = sorted({label for per in counts.values() for label in per})
    width = max([len("label")] + [len(l) for l in labels]) + 2
    col = max([7] + [len(s) + 2 for s in splits])
    lines = [f"== {report['job']} summary ==", "rows (all statuses) by split and label:",
             "label".ljust(width) + "".join(s.rjust(col) for s in splits) + "total".rjust(col)]
    for label in labels:
        cells = [counts[s].get(label, 0) for s in splits]
        lines.append(label.ljust(width) + "".join(str(c).rjust(col) for c in cells) + str(sum(cells)).rjust(col))
    totals = [sum(counts[s].values()) for s in splits]
    lines.append("total".ljust(width) + "".join(str(t).rjust(col) for t in totals) + str(sum(totals)).rjust(col))
    quarantine = report["quarantine"]
    if quarantine:
        lines.append("quarantined: " + ", ".join(f"{k} {v['count']}" for k, v in sorted(quarantine.items())))
        for reason, info in sorted(quarantine.items()):
            for example in info["examples"][:2]:
                lines.append(f"  {reason}: {example['path']}: {example['error']}")
    else:
        lines.append("quarantined: none")
    dup = report.get("duplicates")
    if dup is not None:
        spread = f", {dup['groups_in_several_splits']} spread over several splits" if report.get("split") else ""
        lines.append(f"exact duplicates: {dup['extra_copies']} extra copies in {dup['groups']} groups"
                     f" ({dup['conflicting_label_groups']} with conflicting labels{spread})")
    samples = report.get("samples")
    if samples and samples["largest"] > 1:
        lines.append(f"samples: {samples['count']} (up to {samples['largest']} files each); incomplete: "
                     + (", ".join(f"no {m} in {v['count']} (e.g. {v['examples'][0]})"
                                  for m, v in sorted(samples["incomplete"].items())) or "none"))
    if report.get("augmented_copies"):
        lines.append(f"augmented copies: {report['augmented_copies']} (aug_index >= 1)")
    for channels, norm in sorted((report.get("normalization") or {}).items()):
        lines.append(f"normalize ({norm['split']}, {norm['images']} images, {channels} channels): "
                     f"mean={norm['mean']} std={norm['std']}")
    rec = report.get("reconciliation")
    if rec:
        lines.append(input_line(rec))
        for uris in rec.get("same_name_after_nfc_examples", []):
            lines.append(f"  same name after Unicode NFC, kept as separate rows: {', '.join(uris)}")
    if report.get("incremental"):
        lines.append(incremental_line(report["incremental"]))
    near = report.get("near_duplicates")
    if near:
        lines.append(near_line(near))
    if report.get("split"):
        sp = report["split"]
        lines.append(f"split: {sp['split_algo']} seed={sp['seed']!r} ratios={sp['ratios']} key-by={sp['key_by']}"
                     f" stratify={sp['stratify']}; keys in more than one split: {report['leakage']['keys_in_several_splits']}")
        lines += split_warnings(sp, counts)
    lines.append(f"output: {report['output']['uri']} ({report['output']['format']})")
    speed = report["throughput"]
    rate = f"{speed['rows_per_s']:.0f} {speed['unit']}/s"
    out_rate = speed.get("output_rows_per_s")
    if out_rate is not None and round(out_rate) != round(speed["rows_per_s"]):  # augmented copies
        rate = f"{speed['rows_per_s']:.0f} input {speed['unit']}/s, {out_rate:.0f} output rows/s"
    lines.append(f"time: {report['seconds']:.1f}s, {rate}{jobs_words(report)}")
    return "\n".join(lines)


def jobs_words(report: dict) -> str:
    """', N Spark jobs' for a time line, when the run counted them."""
    jobs = report.get("spark_jobs")
    return f", {jobs['total']} Spark jobs" if jobs else ""


def input_line(rec: dict) -> str:
    """How the input reconciled, for each kind of input: a listed folder, a manifest, WebDataset shards."""
    if "listed_shards" in rec:
        return (f"input: {rec['listed_shards']} WebDataset shards, {rec['rows']} rows (one per tar member); "
                f"every shard accounted for: {rec['reconciled']}")
    if "manifest" in rec:
        outside = f", {rec['outside_input']} outside --input" if rec.get("outside_input") else ""
        return (f"input: manifest {rec['manifest']}: {rec['listed_files']} objects listed, {rec['rows']} rows, "
                f"{rec['skipped_extension']} skipped by extension{outside}; reconciled: {rec['reconciled']}")
    return (f"input: {rec['listed_files']} listed, {rec['rows']} rows, {rec['skipped_extension']} skipped by "
            f"extension, {rec['skipped_hidden']} hidden, {rec.get('skipped_symlinks', 0)} symbolic links skipped; "
            f"reconciled: {rec['reconciled']}")


def incremental_line(inc: dict) -> str:
    """What --incremental kept unread, read and dropped, and why everything was read when it was (ingest and
    split: files read; preprocess: samples transformed)."""
    if "transformed" in inc:
        line = (f"incremental: {inc['kept']} of {inc['listed']} samples kept from the previous output, "
                 f"{inc['transformed']} transformed, {inc['deleted']} gone since the previous run")
        if inc.get("relabelled"):
            line += f"; {inc['relabelled']} transformed again for a new label in --labels"
        return line + (f"; transformed everything: {inc['full_run']}" if inc.get("full_run") else "")
    unit = inc.get("unit", "files")  # WebDataset input: shards are listed, read and deleted whole
    deleted = f"{inc.get('deleted', 0)}{'' if unit == 'files' else ' ' + unit} deleted"
    line = (f"incremental: {inc.get('kept', 0)} rows kept unread, {inc.get('read', 0)} {unit} read, {deleted} "
            "since the previous run")
    if inc.get("unversioned"):
        line += f"; {inc['unversioned']} without a version in the listing (read again)"
    if inc.get("relabelled"):
        line += f"; {inc['relabelled']} read again for a new label in --labels"
    return line + (f"; read everything: {inc['full_read']}" if inc.get("full_read") else "")


def export_incremental_line(inc: dict) -> str:
    """What export --incremental kept in place, wrote and removed, and why it wrote everything when it did."""
    line = (f"incremental: {inc['kept']} of {inc['files']} {inc.get('unit', 'files')} kept in place, "
            f"{inc['written']} written, {inc['removed']} files removed")
    return line + (f"; wrote everything: {inc['full_run']}" if inc.get("full_run") else "")


def near_line(near: dict) -> str:
    """One line of the near-duplicate audit: leakage first."""
    clusters = near.get("clusters") or {}
    skipped = near["flat_hashes"]["rows"] + near["capped_band_keys"]["count"]
    calibration = near.get("calibration") or {}
    how = {"calibrated": ", calibrated"}.get(calibration.get("how"), "")
    second, angle = near.get("second_hash") or {}, near.get("angle") or {}
    rule = f"pHash within {near['threshold']} bits"
    if second.get("used"):  # the 64-bit hash alone cannot tell these images apart (sparkprep.audit.rule)
        rule += f" and phash256 within {second['threshold']} bits"
    if angle.get("used"):
        rule = f"DCT directions within {angle['threshold_degrees']:g} degrees"
    crops = near.get("crops") or {}
    if crops.get("searched"):
        how += f"; or of a window within {crops['threshold']} bits: {crops['hash_pairs']} crop pairs"
    line = (f"near-duplicates ({rule}{how}): {near['pairs_across_splits']} pairs across "
            f"splits (leakage), {near['pairs_within_splits']} within; {clusters.get('count', 0)} clusters, largest "
            f"{clusters.get('largest', 0)}")
    if angle.get("used"):
        line += "; pHash cannot tell this data's images apart, so the angle between their DCT directions decides"
    elif calibration.get("how") == "calibrated" and near["threshold"] == 0:
        line += "; the hash cannot tell this data's images apart, so only exact hash matches count"
        cannot = [name for name, measured in (("phash256", second), ("the DCT directions", angle.get("calibration")))
                  if measured]
        if cannot:
            line += f" ({' and '.join(cannot)} cannot either)"
    if crops and not crops.get("searched"):
        line += f"; crop pairs not searched: {crops['reason']}"
    if skipped:
        line += (f"; not joined: {near['flat_hashes']['rows']} rows of {near['flat_hashes']['count']} low-information "
                 f"hashes, {near['capped_band_keys']['count']} crowded band keys")
    if near.get("merge"):
        merge = near["merge"]
        line += f"; merged {merge['clusters']} clusters, {merge['rows_moved']} rows moved against the hash split"
        refused = [f"{part['clusters']} {what}" for what, part in (("too large", merge.get("not_merged")),
                                                                    ("chains", merge.get("without_centre")))
                   if part and part.get("clusters")]
        if refused:
            line += f" (not merged: {', '.join(refused)})"
    return line


def features_summary(report: dict) -> str:
    """The features job's summary: the rows table, then the features, unknown categories and files."""
    features, out = report["features"], report["output"]
    lines = [summary_table(report),
             f"features: {features['count']} ({len(report['config'].get('categorical') or ())} categorical columns "
             f"one-hot), fitted on split {features['fit_split']!r} only; model: {out['model']}"]
    unknown = {s: sum(per.values()) for s, per in features["unknown_categories"].items() if sum(per.values())}
    if unknown:
        lines.append("values of categories the fit split never had (-> <column>=__unknown__): "
                     + ", ".join(f"{s} {n}" for s, n in unknown.items()))
    for target, per in out["files"].items():
        lines.append(f"{target}: " + ", ".join(f"{s} {v['files']} files" for s, v in per.items()))
    return "\n".join(lines)


def report_summary(report: dict) -> str:
    """The report job's summary: the table's, and where the page is."""
    return summary_table(report) + f"\npage: {report['output']['page']}"


def export_summary(report: dict) -> str:
    """Human-readable summary of an export: samples per split, quarantine left out, files, speed."""
    out = report["output"]
    lines = [f"== export summary ({out['export_format']}) ==",
             "samples exported by split: " + (", ".join(f"{s} {n}" for s, n in report["counts"].items()) or "none")]
    skipped = {s: sum(q.values()) for s, q in report["quarantined"].items()}
    lines.append("quarantined rows not exported: " + (", ".join(f"{s} {n}" for s, n in skipped.items()) or "none"))
    lines.append(f"written: {report['written']}, {out.get('bytes_written', out['bytes']) / 1e6:.1f} MB"
                 + (f"; removed {out['removed_stale_files']} stale files" if out["removed_stale_files"] else ""))
    if report.get("incremental"):
        lines.append(export_incremental_line(report["incremental"]))
    lines.append(f"manifest: {out['manifest']}")
    speed = report["throughput"]
    lines.append(f"time: {report['seconds']:.1f}s, {speed['samples_per_s'] or 0:.0f} samples/s, "
                 f"{speed['mb_per_s'] or 0:.1f} MB/s{jobs_words(report)}")
    return "\n".join(lines)


def pipeline_summary(report: dict) -> str:
    """The processed table's summary, one line per export, and where every output and report is."""
    if "plan" in report:
        return summary_table(report)
    stages = report["stages"]
    lines = [summary_table(stages["processed"])]
    near = (stages.get("splits") or {}).get("near_duplicates")
    if near:  # audited on the split table (the processed table holds no hashes)
        lines.append(near_line(near))
    for name, stage in stages.items():
        if name not in ("splits", "processed"):
            out = stage["output"]
            lines.append(f"export {name}: " + ", ".join(f"{s} {n}" for s, n in stage["counts"].items())
                         + f" samples, {out['files']} files, {out['bytes'] / 1e6:.1f} MB; manifest {out['manifest']}")
            if stage.get("incremental"):
                lines.append(f"export {name} " + export_incremental_line(stage["incremental"]))
    lines.append(f"passes: {report['passes']}")
    root = report["output"]["uri"]
    lines.append("published: " + ", ".join(f"{root}/{name}" for name in report["published"]))
    lines.append(f"report: {root}/_run_report.json (every stage), {root}/report.html; time: {report['seconds']:.1f}s{jobs_words(report)}")
    return "\n".join(lines)


def split_warnings(split: dict, counts: Dict[str, Dict[str, int]]) -> List[str]:
    """What a split that left splits empty says: few keys (a group key over a handful of patients)
    cannot fill every split; a test split without rows measures nothing."""
    filled = [name for name in split["names"] if sum(counts.get(name, {}).values())]
    empty = [name for name in split["names"] if name not in filled]
    if not empty or not filled:
        return []
    return [f"warning: split {', '.join(empty)} got no rows (every row is in {', '.join(filled)}); with "
            f"key-by={split['key_by']} the rows have too few distinct keys to fill {len(split['names'])} splits "
            "at these ratios: add data, or choose fewer splits or another key"]


def map_summary(report: dict) -> str:
    """A map run's summary: an export's when --to made the output an export, else a table's."""
    return export_summary(report) if "manifest" in report["output"] else summary_table(report)
