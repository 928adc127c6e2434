"""Read a sparkprep RecordIO export with MXNet's own readers; print what they saw as JSON.

Runs in the separate MXNet venv (.venv-mxnet: mxnet==1.9.1, numpy<1.24), never in sparkprep's:
    .venv-mxnet/bin/python tests/mxnet/read_recordio.py records <export dir>
    .venv-mxnet/bin/python tests/mxnet/read_recordio.py write <payloads.bin> <out.rec>
`records`: every shard through mx.recordio.MXIndexedRecordIO (its .idx), each image decoded by
mx.image.imdecode, then every shard again through the C++ training iterator mx.io.ImageRecordIter.
`write`: payloads (4-byte little-endian length, then bytes, repeated) written by MXNet's own
writer, to compare byte for byte with sparkprep's.
"""

import glob
import json
import os
import struct
import sys

import mxnet as mx


def records(root):
    out = {"shards": {}, "iterated": {}}
    for rec in sorted(glob.glob(os.path.join(root, "*.rec"))):
        name = os.path.basename(rec)
        reader = mx.recordio.MXIndexedRecordIO(rec[:-4] + ".idx", rec, "r")
        rows = []
        for key in reader.keys:
            header, image = mx.recordio.unpack(reader.read_idx(key))
            decoded = mx.image.imdecode(image)
            rows.append({"key": key, "flag": header.flag, "label": float(header.label), "id": header.id,
                         "id2": header.id2, "shape": list(decoded.shape), "bytes": len(image)})
        reader.close()
        out["shards"][name] = rows
        height, width = rows[0]["shape"][:2]
        batches = mx.io.ImageRecordIter(path_imgrec=rec, data_shape=(3, height, width), batch_size=1,
                                        preprocess_threads=1, prefetch_buffer=1)
        labels = [float(batch.label[0].asnumpy()[0]) for batch in batches]
        out["iterated"][name] = labels
    print(json.dumps(out))


def write(payloads_file, out):
    data = open(payloads_file, "rb").read()
    writer = mx.recordio.MXRecordIO(out, "w")
    pos = 0
    while pos < len(data):
        (n,) = struct.unpack_from("<I", data, pos)
        writer.write(data[pos + 4:pos + 4 + n])
        pos += 4 + n
    writer.close()


if __name__ == "__main__":
    if sys.argv[1] == "records":
        records(sys.argv[2])
    else:
        write(sys.argv[2], sys.argv[3])
