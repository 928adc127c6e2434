"""Read sparkprep's outputs with the training frameworks' own loaders; print what they saw as JSON.

Runs in the clients' venv (.venv-clients: torch, torchvision, tensorflow-cpu, datasets), or for `mds` in
.venv-mds (mosaicml-streaming pins huggingface-hub below 1.0, which datasets 5 does not accept), never in sparkprep's; tests/clients/test_clients.py makes the outputs with Spark and checks what this prints:
    .venv-clients/bin/python tests/clients/read_with.py torchvision <imagefolder export>
    .venv-clients/bin/python tests/clients/read_with.py online <processed table> <raw files root>
    .venv-clients/bin/python tests/clients/read_with.py tfdata <tfrecord export>
    .venv-clients/bin/python tests/clients/read_with.py datasets <export> [builder]
    .venv-mds/bin/python tests/clients/read_with.py mds <mds export>
`online` imports sparkprep.online from lib/ (PYTHONPATH): it needs Pillow and numpy only.
"""

import glob
import hashlib
import io
import json
import os
import sys


def torchvision_folder(root):
    """torchvision's ImageFolder and DataLoader over each split folder: every file, in batches. torchvision
    numbers the class folders it finds, so a split without some class would number the others differently:
    target_transform maps its index to the manifest's (the recipe docs/jobs/export.md gives)."""
    import torch
    from torchvision import datasets, transforms

    manifest = json.load(open(os.path.join(root, "manifest.json")))
    label_of = {folder: label for label, folder in manifest["label_dirs"].items()}
    out = {}
    for split in sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("_")):
        folder = datasets.ImageFolder(os.path.join(root, split), transform=transforms.ToTensor())
        folder.target_transform = lambda i, names=folder.classes: manifest["classes"][label_of[names[i]]]
        loader = torch.utils.data.DataLoader(folder, batch_size=8, shuffle=False, num_workers=0)
        shapes, labels = set(), []
        for images, targets in loader:
            shapes.add(tuple(images.shape[1:]))
            labels += targets.tolist()
        out[split] = {"classes": folder.classes, "class_to_idx": folder.class_to_idx, "labels": labels,
                      "files": [os.path.relpath(path, root) for path, _ in folder.samples],
                      "shapes": sorted(list(s) for s in shapes)}
    return out


def online(table, raw_root):
    """The recorded recipe inside a real torchvision Compose, on the raw files, against the processed
    table's images decoded: how many tensors are equal."""
    import pyarrow.dataset as ds
    import torch
    from PIL import Image
    from torchvision import transforms

    from sparkprep.online import load_transform

    t = load_transform(table)
    compose = transforms.Compose([t.for_pil(), transforms.ToTensor()])
    rows = ds.dataset(table, format="parquet", partitioning="hive", ignore_prefixes=["_", "."]).to_table(
        columns=["path", "image", "aug_index", "status"]).to_pylist()
    compared, equal, differ = 0, 0, []
    for row in rows:
        if row["status"] != "ok" or row["aug_index"]:
            continue
        path = row["path"][len("file:"):] if row["path"].startswith("file:") else row["path"]
        with Image.open(path) as source:
            tensor = compose(source)
        stored = transforms.ToTensor()(Image.open(io.BytesIO(row["image"])))
        compared += 1
        same = bool(tensor.shape == stored.shape and torch.equal(tensor, stored))
        equal += same
        if not same:
            differ.append({"path": os.path.relpath(path, raw_root), "shapes": [list(tensor.shape), list(stored.shape)],
                           "max_difference": float((tensor - stored).abs().max()) if tensor.shape == stored.shape
                           else None})
    return {"compared": compared, "equal": equal, "differ": differ, "torch": torch.__version__}


def tfdata(root):
    """tf.data's TFRecordDataset, parse_single_example and decode_image over every shard."""
    import tensorflow as tf

    files = sorted(glob.glob(os.path.join(root, "*.tfrecord")))
    spec = {"image/encoded": tf.io.FixedLenFeature([], tf.string),
            "image/class/label": tf.io.FixedLenFeature([], tf.int64),
            "image/class/text": tf.io.FixedLenFeature([], tf.string),
            "image/key/sha256": tf.io.FixedLenFeature([], tf.string)}
    examples = []
    for record in tf.data.TFRecordDataset(files):
        parsed = tf.io.parse_single_example(record, spec)
        image = tf.io.decode_image(parsed["image/encoded"], expand_animations=False)
        examples.append({"label": int(parsed["image/class/label"]), "text": parsed["image/class/text"].numpy().decode(),
                         "sha256": parsed["image/key/sha256"].numpy().decode(), "shape": list(image.shape),
                         "image_sha256": hashlib.sha256(parsed["image/encoded"].numpy()).hexdigest()})
    return {"files": [os.path.basename(f) for f in files], "examples": examples, "tensorflow": tf.__version__}


def hf_datasets(root, builder=None):
    """datasets.load_dataset over an export folder, without arguments (or with its builder and data_dir)."""
    import datasets

    loaded = datasets.load_dataset(builder, data_dir=root) if builder else datasets.load_dataset(root)
    out = {"datasets": datasets.__version__, "splits": {}}
    for split, data in loaded.items():
        features = {name: type(feature).__name__ for name, feature in data.features.items()}
        names = {name: feature.names for name, feature in data.features.items()
                 if isinstance(feature, datasets.ClassLabel)}
        first = data[0] if len(data) else {}
        out["splits"][split] = {"rows": len(data), "features": features, "class_names": names,
                                "first_types": {k: type(v).__name__ for k, v in first.items()}}
    return out


def mosaic(root):
    """streaming's StreamingDataset (sha256 checked) and a torch DataLoader over each split of an MDS export; then
    MDSWriter, given the same samples in the same order (the image as its stored bytes, read by streaming's
    MDSReader), writes a folder to compare with the export byte for byte. Runs in .venv-mds."""
    import tempfile

    import streaming
    import torch
    from streaming import MDSWriter, StreamingDataset
    from streaming.base.format.mds.reader import MDSReader

    out = {"streaming": streaming.__version__, "splits": {}}
    for split in sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "index.json"))):
        data = StreamingDataset(local=root, split=split, shuffle=False, batch_size=8, validate_hash="sha256")
        loader = torch.utils.data.DataLoader(data, batch_size=8, num_workers=0,
                                             collate_fn=lambda batch: batch)
        samples = [s for batch in loader for s in batch]
        index = json.load(open(os.path.join(root, split, "index.json")))
        first = index["shards"][0]
        rewritten, same = tempfile.mkdtemp(prefix="sparkprep-mdswriter-"), True
        with MDSWriter(columns=dict(zip(first["column_names"], first["column_encodings"])), out=rewritten,
                       hashes=first["hashes"], size_limit=first["size_limit"]) as writer:
            for entry in index["shards"]:
                stored = MDSReader.from_json(root, split, {**entry, "column_encodings": [
                    "bytes" if name == "image" else e for name, e in zip(entry["column_names"],
                                                                         entry["column_encodings"])]})
                for i in range(entry["samples"]):
                    writer.write(stored.decode_sample(stored.get_sample_data(i)))
        for name in sorted(os.listdir(rewritten)) + sorted(os.listdir(os.path.join(root, split))):
            ours, theirs = os.path.join(root, split, name), os.path.join(rewritten, name)
            same = same and os.path.isfile(ours) and os.path.isfile(theirs) and \
                open(ours, "rb").read() == open(theirs, "rb").read()
        out["splits"][split] = {
            "rows": len(data), "identical_to_mdswriter": same, "shards": len(index["shards"]),
            "samples": [{"sha256": s["sha256"], "label": s["label"], "aug_index": s["aug_index"], "key": s["key"],
                         "split": s["split"], "image": type(s["image"]).__name__, "size": list(s["image"].size)}
                        for s in samples]}
    return out


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    run = {"torchvision": torchvision_folder, "online": online, "tfdata": tfdata, "datasets": hf_datasets,
           "mds": mosaic}[command]
    print(json.dumps(run(*args)))
