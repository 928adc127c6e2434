"""One object per export format: its records, shard names, the files beside a shard, what its
manifest says, how its summary counts files. The writers (export_rows), the Spark glue, the
flags and the run report ask the format; none of them switches on its name.

Pure Python: the record encoders are in `shards`, byte for byte as each format's readers expect.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from sparkprep.export import hf, mds, shards

LIST_PARTS = "_lst_parts"  # RecordIO: each shard's lines of its split's .lst, in staging until joined


def folder_path(sample: shards.Sample, dirs: Optional[Dict[str, str]]) -> str:
    """Where an ImageFolder export puts a sample's image: <split>/<label dir>/<name>.<ext>."""
    return f"{sample.split}/{shards.label_dir(dirs or {}, sample.label)}/{sample.name}.{sample.ext}"


def _entry(r: dict) -> dict:
    return {k: r[k] for k in ("name", "split", "samples", "bytes", "sha256")}


@dataclass(frozen=True)
class ExportFormat:
    """What every export format answers. The sharded ones override `record` and `shard_name`."""

    name: str
    sharded: bool = True          # ImageFolder writes a file per sample instead
    sized_by_content: bool = False  # a record's size depends on its image's bytes, not only their length
    overhead: int = 0             # bytes a shard may add beyond its records as sized
    encoded_only: str = ""        # refuses tables of raw pixels, because: who decodes the image bytes
    writes_rows: bool = False     # a shard is a file built from its rows (shard_file), not records end to end
    table_facts: Tuple[str, ...] = ()  # what configured() needs of the table: "image_format", "members"
    default_shard_size: Optional[int] = None  # --shard-size when this format is the only target and none is given
    max_shard_size: int = 1 << 50

    def configured(self, shard_size: Optional[int], image_formats: Iterable[str] = (),
                   members: Sequence[str] = ()) -> "ExportFormat":
        """This format as one run writes it: its --shard-size, and (as table_facts asks) the formats of the table's
        images and the names of its samples' other members."""
        return self

    def settings(self) -> Dict[str, object]:
        """What configured() decided that a shard's bytes depend on; export --incremental keeps a previous
        export's shards only when it decided the same (the manifest records it as format_settings)."""
        return {}

    def record(self, sample: shards.Sample, class_index: int, record_id: int = 0) -> bytes:
        raise ValueError(f"no shard records for export format {self.name!r}")

    def shard_name(self, split: str, index: int, total: Optional[int]) -> str:
        """The file name of shard `index` of `split`. total: the split's shards, or None for a name that
        does not count them (export --incremental appends shards, so the count grows)."""
        raise ValueError(f"no shards for export format {self.name!r}")

    def shard_file(self, rows: Iterable[Tuple[shards.Sample, int]], classes: Dict[str, int]) -> Iterable[bytes]:
        """With writes_rows: a shard's bytes from its (sample, class index) rows, in order."""
        raise ValueError(f"export format {self.name!r} writes records")

    def trailer(self, written: int) -> bytes:
        """What ends a shard of `written` record bytes."""
        return b""

    def companions(self, shard: str, placed: Sequence[Tuple[int, int, int, str]]) -> List[Tuple[str, bytes]]:
        """(name, bytes) of the files written beside a shard, from its records as placed:
        (record id, byte offset, class index, the sample's path in an ImageFolder export)."""
        return []

    def finish(self, dest, staging: str, published: List[dict], about: Optional[dict] = None) -> List[dict]:
        """The published files once every task is done (the driver's last step before publishing); about:
        the run's classes, counts_by_label, quarantined, leakage and recipe, for what a format writes of them."""
        return published

    # export --incremental: what a shard left in place brings with it.
    def companion_files(self, entry: dict) -> List[str]:
        """The files a shard's manifest entry lists beside it (a shard is in place only with them)."""
        return []

    def kept_files(self, entry: dict, sizes: Dict[str, int]) -> List[dict]:
        """The published rows of a shard left in place (its manifest entry) and of its companions."""
        return [{**_entry(entry), "label": None, "kept": True}]

    def carry(self, dest, staging: str, kept: List[dict], placement) -> List[dict]:
        """Before finish: staged what finish needs from the shards left in place (placement: the previous
        export's split, name, kept_shard, previous_id per sample)."""
        return []

    def manifest_block(self, dirs: Dict[str, str]) -> Dict[str, object]:
        """What the manifest says about this format, beside what every export's manifest says."""
        return {}

    def shard_entries(self, published: List[dict]) -> List[dict]:
        """The manifest's "shards": each shard as written."""
        return [_entry(r) for r in sorted(published, key=lambda r: r["name"])]

    def files_written(self, files: int, shard_count: int) -> str:
        """The summary's words for what was written."""
        return f"{files} shards"


class ImageFolder(ExportFormat):
    def manifest_block(self, dirs):
        return {"label_dirs": {label: dirs[label] for label in sorted(dirs)}}

    def shard_entries(self, published):
        """An ImageFolder tree is listed per <split>/<label dir> directory."""
        groups: Dict[str, List[dict]] = {}
        for r in published:
            groups.setdefault(r["name"].rsplit("/", 1)[0], []).append(r)
        entries = []
        for directory, files in sorted(groups.items()):
            listing = "".join(f"{f['name'].rsplit('/', 1)[1]} {f['sha256']}\n"
                              for f in sorted(files, key=lambda f: f["name"]))
            entries.append({"name": directory + "/", "split": files[0]["split"], "label": files[0]["label"],
                            "samples": sum(f["samples"] for f in files), "bytes": sum(f["bytes"] for f in files),
                            "sha256": hashlib.sha256(listing.encode("utf-8")).hexdigest(),
                            "sha256_of": "lines '<file name> <file sha256>' sorted by name"})
        return entries

    def files_written(self, files, shard_count):
        return f"{files} files"


class WebDataset(ExportFormat):
    def record(self, sample, class_index, record_id=0):
        return shards.webdataset_record(sample, class_index)

    def shard_name(self, split, index, total):
        return f"{split}-{index:06d}.tar"

    def trailer(self, written):
        return shards.tar_trailer(written)

    def manifest_block(self, dirs):
        return {"members": {"cls": "class index", "json": "label, key, sha256, path, width, height, aug_index",
                            "image": "jpg | png | webp | npy (raw pixels)"}}


class TFRecord(ExportFormat):
    def record(self, sample, class_index, record_id=0):
        return shards.tfrecord_record(sample, class_index)

    def shard_name(self, split, index, total):
        if total is None:
            return f"{split}-{index:05d}.tfrecord"
        return f"{split}-{index:05d}-of-{total:05d}.tfrecord"


class RecordIO(ExportFormat):
    """MXNet's RecordIO: a shard is its .rec and .idx; each split gets one .lst, joined from one part
    per shard at the end."""

    def record(self, sample, class_index, record_id=0):
        return shards.recordio_record(sample, class_index, record_id)

    def shard_name(self, split, index, total):
        return f"{split}-{index:05d}.rec"

    def companion_files(self, entry):
        return [entry["idx"]]

    def kept_files(self, entry, sizes):
        return super().kept_files(entry, sizes) + [{
            "split": entry["split"], "name": entry["idx"], "label": None, "samples": 0, "bytes": sizes[entry["idx"]],
            "sha256": entry["idx_sha256"], "kept": True}]

    def carry(self, dest, staging, kept, placement):
        """Each kept shard's lines of its split's .lst in place, staged as that shard's part (finish joins the
        parts in shard order, as for a full export with the same placement)."""
        names = {r["name"] for r in kept if r["name"].endswith(".rec")}
        shard_of = {(split, record_id): name for split, shard, record_id in zip(
            placement.column("split").to_pylist(), placement.column("kept_shard").to_pylist(),
            placement.column("previous_id").to_pylist()) if (name := self.shard_name(split, shard, None)) in names}
        lines: Dict[str, List[str]] = {name: [] for name in names}
        for split in sorted({split for split, _ in shard_of}):
            for line in (dest.read_text(f"{split}.lst") or "").splitlines(keepends=True):
                name = shard_of.get((split, int(line.split("\t", 1)[0])))
                if name:
                    lines[name].append(line)
        out = []
        for r in sorted((r for r in kept if r["name"] in names), key=lambda r: r["name"]):
            if len(lines[r["name"]]) != r["samples"]:
                raise ValueError(f"{r['split']}.lst in the output lists {len(lines[r['name']])} of the "
                                 f"{r['samples']} records of {r['name']}; run without --incremental")
            part = f"{LIST_PARTS}/{r['name'][:-len('.rec')]}.lst"
            size, sha = dest.publish(f"{staging}/{part}", ["".join(lines[r["name"]]).encode("utf-8")], "driver")
            out.append({"split": r["split"], "name": part, "label": None, "samples": 0, "bytes": size, "sha256": sha,
                        "kept": False})
        return out

    def companions(self, shard, placed):
        stem = shard[:-len(".rec")]
        index = "".join(shards.recordio_index_line(record_id, offset) for record_id, offset, _, _ in placed)
        lines = "".join(shards.recordio_list_line(record_id, class_index, path)
                        for record_id, _, class_index, path in placed)
        return [(f"{stem}.idx", index.encode()), (f"{LIST_PARTS}/{stem}.lst", lines.encode("utf-8"))]

    def finish(self, dest, staging, published, about=None):
        """Each split's `.lst` parts (one per shard, in shard order) -> `<split>.lst` in staging."""
        parts: Dict[str, List[str]] = {}
        for r in published:
            if r["name"].startswith(LIST_PARTS + "/"):
                parts.setdefault(r["split"], []).append(r["name"])
        joined = [r for r in published if not r["name"].startswith(LIST_PARTS + "/")]
        for split in sorted(parts):
            ordered = sorted(parts[split], key=lambda name: (len(name), name))  # shard order past 99999 too
            texts = (dest.read_text(f"{staging}/{name}").encode("utf-8") for name in ordered)
            size, sha = dest.publish(f"{staging}/{split}.lst", texts, "driver")
            joined.append({"split": split, "name": f"{split}.lst", "label": None, "samples": 0, "bytes": size,
                           "sha256": sha})
        if parts:
            dest.delete_tree(f"{staging}/{LIST_PARTS}")
        return joined

    def manifest_block(self, dirs):
        return {"recordio": {
            "record": "dmlc RecordIO (magic 0xced7230a); payload = IRHeader('<IfQQ': flag 0, label = class index, "
                      "id, id2 0) + the encoded image, as MXNet's im2rec.py packs it",
            "id": "the sample's position in its split (0..n-1), unique within the split; with --incremental a "
                  "kept sample keeps its id and other samples take ids after the highest kept one",
            "idx": "<split>-NNNNN.idx per shard: '<id>\\t<byte offset>' (mx.recordio.MXIndexedRecordIO)",
            "lst": "<split>.lst: '<id>\\t<label>\\t<path>', path as an ImageFolder export of the same table "
                   "writes it (relative to that export's root), for re-packing with im2rec.py",
            "members": "the image only; a sample's other members are not written",
            "label_dirs": {label: dirs[label] for label in sorted(dirs)},
        }}

    def shard_entries(self, published):
        files = {r["name"]: r for r in published}
        return [{**_entry(r), "idx": r["name"][:-4] + ".idx", "idx_sha256": files[r["name"][:-4] + ".idx"]["sha256"]}
                for r in sorted(published, key=lambda r: r["name"]) if r["name"].endswith(".rec")]

    def files_written(self, files, shard_count):
        return f"{shard_count} shards ({files} files: .rec and .idx per shard, .lst per split)"


@dataclass(frozen=True)
class HuggingFace(ExportFormat):
    """Parquet shards with the `datasets` features in their metadata, and a dataset card (sparkprep.export.hf)."""

    members: Tuple[str, ...] = ()  # the samples' other members: a column each

    def configured(self, shard_size, image_formats=(), members=()):
        return dataclasses.replace(self, members=tuple(sorted(members)))

    def settings(self):
        return {"members": list(self.members)} if self.members else {}

    def record(self, sample, class_index, record_id=0):
        return hf.record(sample, None if class_index == shards.UNLABELED_INDEX else class_index)

    def shard_file(self, rows, classes):
        return hf.shard_bytes(((s, None if i == shards.UNLABELED_INDEX else i) for s, i in rows), classes,
                              self.members)

    def shard_name(self, split, index, total):
        return f"data/{split}-{index:05d}" + ("" if total is None else f"-of-{total:05d}") + ".parquet"

    def finish(self, dest, staging, published, about=None):
        """The dataset card, README.md, from the shards as published and the run's counts."""
        about = about or {}
        text = hf.card(about.get("classes") or {}, [r for r in published if r["name"].endswith(".parquet")],
                       about.get("counts_by_label") or {}, about.get("quarantined") or {}, about, self.members)
        size, sha = dest.publish(f"{staging}/README.md", [text.encode("utf-8")], "driver")
        return published + [{"split": None, "name": "README.md", "label": None, "samples": 0, "bytes": size,
                             "sha256": sha}]

    def manifest_block(self, dirs):
        return {"hf": {"files": "data/<split>-NNNNN-of-NNNNN.parquet (data/<split>-NNNNN.parquet with "
                                "--incremental), README.md (the dataset card)",
                       "columns": "image struct<bytes, path>, label int64 (null: unlabeled), key, sha256, width, "
                                  "height, aug_index, source_path, then a column per other member",
                       "member_columns": {m: {"column": c, "feature": k}
                                          for m, c, k in hf.member_columns(self.members)},
                       "features": "Image, ClassLabel (the class map's names) and Values, in each file's "
                                   "`huggingface` schema metadata",
                       "splits": {split: hf.hub_split(split) for split in ("train", "val", "test")},
                       "members": "a column per other member of the samples (null where a sample lacks it): an "
                                  "image member is an Image, a .json one a Json (its text, or as a JSON string when "
                                  "it is not valid JSON), any other binary"}}

    def shard_entries(self, published):
        return [_entry(r) for r in sorted(published, key=lambda r: r["name"]) if r["name"].endswith(".parquet")]

    def files_written(self, files, shard_count):
        return f"{shard_count} shards" + (" and README.md" if files > shard_count else "")


@dataclass(frozen=True)
class Mosaic(ExportFormat):
    """MosaicML streaming's MDS (sparkprep.export.mds): a folder per split, its shards and index.json."""

    image_encoding: str = "bytes"
    size_limit: Optional[int] = None

    def configured(self, shard_size, image_formats=(), members=()):
        encoding = mds.image_encoding(image_formats)
        return dataclasses.replace(self, image_encoding=encoding, size_limit=shard_size,
                                   overhead=mds.CONFIG_FRAME + len(mds.config_bytes(encoding, shard_size)))

    def settings(self):
        return {"image_encoding": self.image_encoding}

    def record(self, sample, class_index, record_id=0):
        """The sample as encoded, and its offset in the shard's header: what it adds to a shard."""
        return mds.sample_bytes(sample, class_index) + bytes(mds.PER_SAMPLE)

    def shard_file(self, rows, classes):
        yield mds.shard_bytes([mds.sample_bytes(sample, class_index) for sample, class_index in rows],
                              mds.config_bytes(self.image_encoding, self.size_limit))

    def shard_name(self, split, index, total):
        return f"{split}/shard.{index:05d}.mds"

    def finish(self, dest, staging, published, about=None):
        """Each split's index.json, from its shards as published (kept ones included)."""
        by_split: Dict[str, List[dict]] = {}
        for r in published:
            if r["name"].endswith(".mds"):
                by_split.setdefault(r["split"], []).append(r)
        out = list(published)
        for split, split_shards in sorted(by_split.items()):
            text = mds.index(split_shards, self.image_encoding, self.size_limit)
            size, sha = dest.publish(f"{staging}/{split}/index.json", [text.encode("utf-8")], "driver")
            out.append({"split": split, "name": f"{split}/index.json", "label": None, "samples": 0, "bytes": size,
                        "sha256": sha})
        return out

    def manifest_block(self, dirs):
        return {"mds": {
            "files": "<split>/shard.NNNNN.mds and <split>/index.json, as MosaicML streaming's MDSWriter writes them",
            "read": "streaming.StreamingDataset(local=<output>, split=<split>)",
            "columns": {"aug_index": "int", "image": self.image_encoding, "key": "str",
                        "label": "int (class index; -1: unlabeled)", "sha256": "str", "split": "str"},
            "image": "jpeg or png when every image is one (decoded to PIL images), else bytes: the file as stored "
                     "(raw pixels: a .npy file)",
            "size_limit": self.size_limit, "hashes": ["sha256"],
            "members": "the image only; a sample's other members are not written"}}

    def shard_entries(self, published):
        return [_entry(r) for r in sorted(published, key=lambda r: r["name"]) if r["name"].endswith(".mds")]

    def files_written(self, files, shard_count):
        return f"{shard_count} shards and an index.json per split"


FORMATS: Dict[str, ExportFormat] = {f.name: f for f in (
    ImageFolder("imagefolder", sharded=False),
    WebDataset("webdataset", overhead=shards.TAR_END + shards.TAR_RECORD - 1),  # the tar trailer at most
    TFRecord("tfrecord"),
    # one record id whose low word is the magic (sizing uses id 0); a record splits at each aligned magic word
    RecordIO("recordio", sized_by_content=True, overhead=4, encoded_only="MXNet decodes RecordIO images with OpenCV"),
    # parquet: at most its rows' bytes (a record overstates a row) plus the footer with the features
    HuggingFace("hf", overhead=32 << 10, encoded_only="datasets' Image feature decodes the bytes with Pillow",
                # 500MB: the Hub's advice for parquet files
                writes_rows=True, table_facts=("members",), default_shard_size=500 << 20),
    # MDSWriter's default size limit; its offsets are uint32. overhead: configured() sets the header's size
    Mosaic("mds", writes_rows=True, table_facts=("image_format",), default_shard_size=1 << 26,
           max_shard_size=mds.MAX_SHARD),
)}
EXPORT_FORMATS = tuple(FORMATS)
SHARD_FORMATS = tuple(name for name, f in FORMATS.items() if f.sharded)
SHARD_NAMES = ", ".join(SHARD_FORMATS[:-1]) + " or " + SHARD_FORMATS[-1]  # for messages
