"""Run one sparkprep job as a SageMaker processing job in SageMaker's Spark container.

    sparkprep-submit-sagemaker --code-uri s3://my-bucket/sparkprep/code \\
        --role arn:aws:iam::123456789012:role/SageMakerProcessing \\
        --instance-type ml.m5.xlarge --instance-count 1 \\
        --step "split --input s3://my-bucket/raw --output s3://my-bucket/splits --ratios 0.8,0.1,0.1"

The job is `submit_app` (jobs/<job>.py), the library zip is `submit_py_files`, and the
step's flags are the `arguments`, exactly as for a local run. conf/sagemaker.conf becomes
the job's Spark configuration.

--io mapped (default): --input (and --labels) are S3 ProcessingInputs copied into the
container, --output is a ProcessingOutput uploaded at the end; the job's flags are
rewritten to the container paths. Needs --instance-count 1, because each instance uploads
only its own local output directory. --io direct passes the s3:// URIs to Spark as they
are (any instance count; the container's Spark reads and writes S3 itself).

With the SageMaker Python SDK v2 installed (`sagemaker.spark.processing.PySparkProcessor`),
the job is run through it; otherwise the same CreateProcessingJob request is sent with
boto3. --dry-run prints that boto3 request and sends nothing.
"""

from __future__ import annotations

import pathlib
import sys
import time
from typing import List, Optional, Tuple

from sparkprep.submit import aws, package

BASE = "/opt/ml/processing"
# Account that publishes the sagemaker-spark-processing images, per region (aws/sagemaker-spark-container).
SPARK_IMAGE_ACCOUNTS = {
    "us-east-1": "173754725891", "us-east-2": "314815235551", "us-west-1": "667973535471",
    "us-west-2": "153931337802", "ap-northeast-1": "411782140378", "ap-northeast-2": "860869212795",
    "ap-east-1": "732049463269", "ap-south-1": "105495057255", "ap-southeast-1": "759080221371",
    "ap-southeast-2": "440695851116", "af-south-1": "309385258863", "me-south-1": "750251592176",
    "sa-east-1": "737130764395", "ca-central-1": "446299261295", "eu-central-1": "906073651304",
    "eu-north-1": "330188676905", "eu-west-1": "571004829621", "eu-west-2": "836651553127",
    "eu-south-1": "753923664805", "eu-west-3": "136845547031",
}
DEFAULT_IMAGE_TAG = "3.3-cpu-py39-v1.0"  # Spark 3.3, Python 3.9
MAPPED_FLAGS = {"--input": "input", "--labels": "labels"}


def image_uri(region: str, tag: str) -> str:
    if region not in SPARK_IMAGE_ACCOUNTS:
        raise aws.SubmitUsageError(f"--region: no SageMaker Spark image known for {region!r}; pass --image-uri")
    return f"{SPARK_IMAGE_ACCOUNTS[region]}.dkr.ecr.{region}.amazonaws.com/sagemaker-spark-processing:{tag}"


def s3_input(name: str, uri: str, local: str) -> dict:
    return {"InputName": name, "AppManaged": False, "S3Input": {
        "S3Uri": uri, "LocalPath": local, "S3DataType": "S3Prefix", "S3InputMode": "File",
        "S3DataDistributionType": "FullyReplicated"}}


def map_io(args: List[str], mode: str) -> Tuple[List[str], List[dict], List[dict]]:
    """Rewrite s3:// --input/--labels/--output to container paths (mode mapped); returns args, inputs, outputs."""
    if mode == "direct":
        return list(args), [], []
    out, inputs, outputs = list(args), [], []
    for i, flag in enumerate(args[:-1]):
        uri = args[i + 1]
        if not uri.startswith("s3://"):
            continue
        if flag in MAPPED_FLAGS:
            name = MAPPED_FLAGS[flag]
            local = f"{BASE}/input/{name}"
            if any(c in uri for c in "*?[{"):
                raise aws.SubmitUsageError(f"{flag}: a glob ({uri}) cannot be a processing input channel; "
                                           "use --io direct")
            tail = uri.rstrip("/").rsplit("/", 1)[-1]
            if is_file_uri(uri):  # a single file (rows.csv, labels.csv) lands inside the channel directory
                out[i + 1] = f"{local}/{tail}"
                inputs.append(s3_input(name, uri, local))
            else:  # S3Prefix matches keys by prefix: without the '/', s3://b/raw would also pull raw-old/ and raw.bak
                out[i + 1] = local
                inputs.append(s3_input(name, uri.rstrip("/") + "/", local))
        elif flag == "--output":
            out[i + 1] = f"{BASE}/output/data"
            outputs.append({"OutputName": "output", "AppManaged": False, "S3Output": {
                "S3Uri": uri, "LocalPath": f"{BASE}/output/data", "S3UploadMode": "EndOfJob"}})
    return out, inputs, outputs


FILE_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".json", ".jsonl", ".tar", ".tar.gz", ".tgz", ".txt")


def is_file_uri(uri: str) -> bool:
    """Whether an input URI names one object (a table file, a manifest, a shard), not a directory."""
    return not uri.endswith("/") and uri.lower().endswith(FILE_SUFFIXES)


def processing_request(opts, job: str, args: List[str], region: str) -> dict:
    """The CreateProcessingJob request PySparkProcessor.run would send, built with plain dicts."""
    code = opts.code_uri.rstrip("/")
    job_args, data_inputs, outputs = map_io(args, opts.io)
    name = job_name(opts, job)
    py_files = f"{BASE}/input/py-files" + (f",{BASE}/input/user-code" if opts.py_files else "")
    request = {
        "ProcessingJobName": name,
        "RoleArn": opts.role,
        "AppSpecification": {
            "ImageUri": opts.image_uri or image_uri(region, opts.image_tag),
            "ContainerEntrypoint": ["smspark-submit", "--py-files", py_files,
                                    f"{BASE}/input/code/{job}.py"],
            "ContainerArguments": job_args,
        },
        "ProcessingInputs": [
            s3_input("code", f"{code}/jobs/{job}.py", f"{BASE}/input/code"),
            s3_input("py-files", f"{code}/sparkprep.zip", f"{BASE}/input/py-files"),
            s3_input("conf", f"{code}/sagemaker/configuration.json", f"{BASE}/input/conf"),
            *([s3_input("user-code", user_prefix(opts, name) + "/", f"{BASE}/input/user-code")] if opts.py_files else []),
            *data_inputs,
        ],
        "ProcessingResources": {"ClusterConfig": {
            "InstanceCount": opts.instance_count, "InstanceType": opts.instance_type,
            "VolumeSizeInGB": opts.volume_size}},
        "StoppingCondition": {"MaxRuntimeInSeconds": opts.max_runtime},
        "Tags": [{"Key": "created-by", "Value": "sparkprep"}],
    }
    if outputs:
        request["ProcessingOutputConfig"] = {"Outputs": outputs}
    return request


def job_name(opts, job: str) -> str:
    return opts.job_name or f"sparkprep-{job}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"


def user_prefix(opts, name: str) -> str:
    """Where this job's own copy of the user's modules goes: a channel of this prefix holds them only."""
    return f"{opts.code_uri.rstrip('/')}/user/{name}"


def run_with_sdk(opts, job: str, args: List[str], bundle: pathlib.Path, region: str):
    """PySparkProcessor.run with the same app, py-files, arguments, channels and configuration."""
    import boto3
    from sagemaker.processing import ProcessingInput, ProcessingOutput
    from sagemaker.session import Session
    from sagemaker.spark.processing import PySparkProcessor

    job_args, data_inputs, outputs = map_io(args, opts.io)
    processor = PySparkProcessor(
        role=opts.role, instance_type=opts.instance_type, instance_count=opts.instance_count,
        image_uri=opts.image_uri or image_uri(region, opts.image_tag), volume_size_in_gb=opts.volume_size,
        max_runtime_in_seconds=opts.max_runtime, base_job_name=f"sparkprep-{job}",
        sagemaker_session=Session(boto_session=boto3.Session(region_name=region)))
    processor.run(
        submit_app=str(bundle / "jobs" / f"{job}.py"),
        submit_py_files=[str(bundle / "sparkprep.zip"), *(str(pathlib.Path(f).resolve()) for f in opts.py_files)],
        arguments=job_args, configuration=package.sagemaker_configuration(), wait=False,
        inputs=[ProcessingInput(source=i["S3Input"]["S3Uri"], destination=i["S3Input"]["LocalPath"],
                                input_name=i["InputName"]) for i in data_inputs],
        outputs=[ProcessingOutput(source=o["S3Output"]["LocalPath"], destination=o["S3Output"]["S3Uri"],
                                  output_name=o["OutputName"]) for o in outputs])
    return processor.latest_job.job_name


def stale_output(s3, request: dict) -> Optional[str]:
    """The S3 URI of a mapped output channel that already holds objects, if any.

    SageMaker copies the channel's local directory to its S3 prefix at the end of the
    job and never deletes there; sparkprep's own replace-safely rules cannot run on it.
    """
    for output in request.get("ProcessingOutputConfig", {}).get("Outputs", []):
        uri = output["S3Output"]["S3Uri"]
        bucket, prefix = aws.split_s3_uri(uri)
        try:
            listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix.rstrip("/") + "/", MaxKeys=1)
        except s3.exceptions.NoSuchBucket:
            continue  # nothing there to mix with; SageMaker reports the missing bucket itself
        if listed.get("KeyCount", 0):
            return uri
    return None


def sdk_available() -> bool:
    try:
        from sagemaker.spark.processing import PySparkProcessor  # noqa: F401
    except ImportError:
        return False
    return True


def parse_args(argv):
    parser = aws.OneLineParser(prog="sparkprep-submit-sagemaker",
                                description="Run a sparkprep job as a SageMaker Spark processing job.")
    parser.add_argument("--code-uri", required=True, help="s3://bucket/prefix the bundle is uploaded to")
    parser.add_argument("--role", required=True, help="IAM role ARN the processing job runs as")
    parser.add_argument("--step", required=True, help="'<job> --flag value ...' with the same flags as a local run")
    parser.add_argument("--instance-type", default="ml.m5.xlarge")
    parser.add_argument("--instance-count", type=int, default=1)
    parser.add_argument("--io", choices=("mapped", "direct"), default="mapped",
                        help="mapped (default): S3 inputs/outputs as processing channels; direct: Spark uses s3://")
    parser.add_argument("--image-uri", help="override the Spark processing image (e.g. one with the deps baked in)")
    parser.add_argument("--image-tag", default=DEFAULT_IMAGE_TAG)
    parser.add_argument("--volume-size", type=int, default=30, help="GB of EBS per instance")
    parser.add_argument("--max-runtime", type=int, default=24 * 3600, help="seconds")
    parser.add_argument("--job-name", help="default sparkprep-<job>-<UTC time>")
    parser.add_argument("--py-files", action="append", default=[],
                        help="your module for a map step (.py, .zip or .egg; repeatable): uploaded with the "
                             "bundle and put on the job's PYTHONPATH; its import is checked here")
    parser.add_argument("--bundle", default=str(package.REPO / "dist" / "bundle"),
                        help="where to build the bundle before uploading it (default dist/bundle)")
    parser.add_argument("--region")
    parser.add_argument("--endpoint-url", help="SageMaker and S3 endpoint override (tests, private endpoints)")
    parser.add_argument("--no-sdk", action="store_true", help="use boto3 even if the SageMaker SDK is installed")
    parser.add_argument("--dry-run", action="store_true", help="print the CreateProcessingJob request, send nothing")
    opts = parser.parse_args(argv)
    aws.split_s3_uri(opts.code_uri)
    if opts.instance_count < 1:
        raise aws.SubmitUsageError(f"--instance-count: expected at least 1, got {opts.instance_count}")
    aws.check_py_files(opts.py_files)
    job, args = aws.parse_step(opts.step, opts.py_files)
    if opts.io == "mapped" and opts.instance_count > 1 and "--output" in args:
        raise aws.SubmitUsageError("--io mapped: expected --instance-count 1 (each instance uploads only its "
                                          "own output directory); use --io direct for several instances")
    return opts, job, args


def main(argv=None) -> int:
    try:
        opts, job, args = parse_args(argv)
        region = opts.region or aws.default_region()
        request = processing_request(opts, job, args, region)
    except aws.SubmitUsageError as exc:
        print(f"sparkprep-submit-sagemaker: error: {exc}", file=sys.stderr)
        return 2
    bundle = pathlib.Path(opts.bundle)
    plan = aws.upload_plan(bundle, opts.code_uri) + aws.user_uploads(
        aws.check_py_files(opts.py_files), user_prefix(opts, request["ProcessingJobName"]))
    if opts.dry_run:
        for path, uri in plan:
            print(f"would upload {path} -> {uri}", file=sys.stderr)
        aws.print_request("create_processing_job", request)
        return 0
    s3 = aws.boto3_client("s3", region, opts.endpoint_url)
    stale = stale_output(s3, request)
    if stale:
        print(f"sparkprep-submit-sagemaker: error: --io mapped: {stale} is not empty; SageMaker uploads the output channel on top "
              "of what is there, so files of an earlier run would stay beside the new ones; use a new, empty "
              "prefix, or --io direct", file=sys.stderr)
        return 2
    if sdk_available() and not opts.no_sdk and not opts.endpoint_url:
        name = run_with_sdk(opts, job, args, bundle, region)
    else:
        aws.upload(s3, plan)
        sagemaker = aws.boto3_client("sagemaker", region, opts.endpoint_url)
        sagemaker.create_processing_job(**request)
        name = request["ProcessingJobName"]
    print(f"processing job: {name}")
    print(f"console: https://{region}.console.aws.amazon.com/sagemaker/home?region={region}"
          f"#/processing-jobs/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
