"""Read sparkprep's outputs with the training frameworks' own loaders; print what they saw as JSON.

Runs in the clients' venv (.venv-clients: torch, torchvision, tensorflow-cpu, datasets), never in
sparkprep's; tests/clients/test_clients.py makes the outputs with Spark and checks what this prints:
    .venv-clients/bin/python tests/clients/read_with.py torchvision <imagefolder export>
    .venv-clients/bin/python tests/clients/read_with.py online <processed table> <raw files root>
    .venv-clients/bin/python tests/clients/read_with.py tfdata <tfrecord export>
    .venv-clients/bin/python tests/clients/read_with.py datasets <export> [builder]
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


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    run = {"torchvision": torchvision_folder, "online": online, "tfdata": tfdata, "datasets": hf_datasets}[command]
    print(json.dumps(run(*args)))
