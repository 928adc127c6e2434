"""WIP issue 15 probe: pyarrow S3FileSystem reads in threads against bench_fetch.LatencyS3 (+20 ms)."""
import sys, time, multiprocessing, os
sys.path.insert(0, "scripts")
import bench_fetch as b
from concurrent.futures import ThreadPoolExecutor
from pyarrow import fs
os.environ.update({"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"})
port = b.free_port()
p = multiprocessing.Process(target=b.serve, args=(b.LatencyS3, (4096, 0.02), port), daemon=True); p.start(); b.wait_for(port)
s3 = fs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http", access_key="x", secret_key="x", region="us-east-1")
keys = [f"bench/obj/{i:06d}.bin" for i in range(2000)]
def get(k):
    with s3.open_input_stream(k) as f: return f.read()
t = time.perf_counter(); [get(k) for k in keys[:200]]; print("pyarrow sequential", 200 / (time.perf_counter() - t))
for c in (8, 32, 64, 128):
    with ThreadPoolExecutor(c) as pool:
        t = time.perf_counter(); list(pool.map(get, keys)); print("pyarrow", c, "threads", round(2000 / (time.perf_counter() - t)))
p.terminate()
