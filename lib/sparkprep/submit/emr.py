"""Run sparkprep jobs as EMR steps: upload the bundle to S3, then add steps or create a cluster.

    # steps on a running cluster
    sparkprep-submit-emr --code-uri s3://my-bucket/sparkprep/code --cluster-id j-1ABCDEFGHIJKL \\
        --step "split --input s3://my-bucket/raw --output s3://my-bucket/splits --ratios 0.8,0.1,0.1"

    # a transient cluster that installs the Python dependencies, runs the steps and terminates
    sparkprep-submit-emr --code-uri s3://my-bucket/sparkprep/code --create \\
        --log-uri s3://my-bucket/emr-logs/ --instance-type m5.xlarge --instance-count 3 \\
        --step "split --input s3://my-bucket/raw --output s3://my-bucket/splits --format delta" \\
        --step "preprocess --input s3://my-bucket/splits --output s3://my-bucket/processed --size 224"

Each step is `command-runner.jar spark-submit --deploy-mode cluster --py-files <code>/sparkprep.zip
--conf ... <code>/jobs/<job>.py <the same flags as a local run>`. The --conf values are
conf/emr.conf, plus conf/emr-delta.conf (EMR's bundled Delta jars) for steps with
--format delta. --dry-run prints the exact boto3 requests and sends nothing.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import List, Sequence, Tuple

from sparkprep.jobs import JOBS
from sparkprep.submit import aws, package

DEFAULT_RELEASE = "emr-7.5.0"  # Spark 3.5, Python 3.9, Delta Lake 3


def step(job: str, args: List[str], code_uri: str, action_on_failure: str, user: Sequence[str] = ()) -> dict:
    """One EMR step running the job through command-runner.jar spark-submit (user: the S3 URIs of the
    user's modules, shipped with the library)."""
    properties = package.read_properties(package.REPO / "conf" / "emr.conf")
    if aws.uses_delta(args):
        properties.update(package.read_properties(package.REPO / "conf" / "emr-delta.conf"))
    code = code_uri.rstrip("/")
    command = ["spark-submit", "--deploy-mode", "cluster", "--py-files", ",".join([f"{code}/sparkprep.zip", *user]),
               *aws.conf_args(properties), f"{code}/jobs/{job}.py", *args]
    return {"Name": f"sparkprep {job}", "ActionOnFailure": action_on_failure,
            "HadoopJarStep": {"Jar": "command-runner.jar", "Args": command}}


def cluster_request(opts, steps: List[dict], delta: bool) -> dict:
    """run_job_flow: a transient cluster with the bootstrap action, the EMR profile and the steps."""
    code = opts.code_uri.rstrip("/")
    instances = {
        "InstanceGroups": [
            {"Name": "primary", "InstanceRole": "MASTER", "InstanceType": opts.instance_type, "InstanceCount": 1},
            {"Name": "core", "InstanceRole": "CORE", "InstanceType": opts.instance_type,
             "InstanceCount": max(1, opts.instance_count - 1)},
        ],
        "KeepJobFlowAliveWhenNoSteps": False,
        "TerminationProtected": False,
    }
    if opts.subnet_id:
        instances["Ec2SubnetId"] = opts.subnet_id
    request = {
        "Name": opts.name, "ReleaseLabel": opts.release_label, "Applications": [{"Name": "Spark"}],
        "Configurations": package.emr_configurations(delta=delta),
        "Instances": instances, "Steps": steps,
        "BootstrapActions": [{"Name": "sparkprep python dependencies", "ScriptBootstrapAction": {
            "Path": f"{code}/bootstrap-emr.sh", "Args": [f"{code}/requirements-cluster.txt"]}}],
        "JobFlowRole": opts.job_flow_role, "ServiceRole": opts.service_role, "VisibleToAllUsers": True,
        "Tags": [{"Key": "created-by", "Value": "sparkprep"}],
    }
    if opts.log_uri:
        request["LogUri"] = opts.log_uri
    return request


def parse_args(argv) -> Tuple[argparse.Namespace, List[Tuple[str, List[str]]]]:
    parser = aws.OneLineParser(prog="sparkprep-submit-emr", description="Run sparkprep jobs as EMR steps.")
    parser.add_argument("--code-uri", required=True, help="s3://bucket/prefix the bundle is uploaded to")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--cluster-id", help="add the steps to this running cluster")
    target.add_argument("--create", action="store_true", help="create a transient cluster that runs the steps")
    parser.add_argument("--step", action="append", required=True,
                        help="'<job> --flag value ...' with the same flags as a local run; repeatable, run in order")
    parser.add_argument("--action-on-failure", choices=("CONTINUE", "CANCEL_AND_WAIT", "TERMINATE_CLUSTER"),
                        help="default: CANCEL_AND_WAIT on a running cluster (later steps are cancelled, the "
                             "shared cluster stays up), TERMINATE_CLUSTER on a transient one")
    parser.add_argument("--py-files", action="append", default=[],
                        help="your module for a map step (.py, .zip or .egg; repeatable): uploaded to "
                             "<code-uri>/user/ and shipped with the library; its import is checked here")
    parser.add_argument("--bundle", default=str(package.REPO / "dist" / "bundle"),
                        help="where to build the bundle before uploading it (default dist/bundle)")
    parser.add_argument("--region", default=None, help="AWS region (default: from the AWS config, else us-east-1)")
    parser.add_argument("--endpoint-url", help="EMR and S3 endpoint override (S3-compatible stores, tests)")
    parser.add_argument("--dry-run", action="store_true", help="print the boto3 requests, send nothing")
    parser.add_argument("--name", default="sparkprep", help="cluster name (--create)")
    parser.add_argument("--release-label", default=DEFAULT_RELEASE)
    parser.add_argument("--instance-type", default="m5.xlarge")
    parser.add_argument("--instance-count", type=int, default=3, help="primary + core nodes (--create)")
    parser.add_argument("--log-uri", help="s3:// prefix for cluster logs (--create)")
    parser.add_argument("--subnet-id")
    parser.add_argument("--service-role", default="EMR_DefaultRole")
    parser.add_argument("--job-flow-role", default="EMR_EC2_DefaultRole")
    opts = parser.parse_args(argv)
    aws.split_s3_uri(opts.code_uri)
    if opts.instance_count < 2:
        raise aws.SubmitUsageError(f"--instance-count: expected at least 2 (primary + core), got {opts.instance_count}")
    aws.check_py_files(opts.py_files)
    if opts.py_files and not any(aws.step_runs_user_code(text) for text in opts.step):
        raise aws.SubmitUsageError("--py-files: expected a map step to ship them with, got none")
    return opts, [aws.parse_step(text, opts.py_files if aws.step_runs_user_code(text) else ()) for text in opts.step]


def main(argv=None) -> int:
    try:
        opts, jobs = parse_args(argv)
    except aws.SubmitUsageError as exc:
        print(f"sparkprep-submit-emr: error: {exc}", file=sys.stderr)
        return 2
    region = opts.region or aws.default_region()
    action = opts.action_on_failure or ("TERMINATE_CLUSTER" if opts.create else "CANCEL_AND_WAIT")
    user = aws.user_uploads(aws.check_py_files(opts.py_files), f"{opts.code_uri.rstrip('/')}/user")
    steps = [step(job, args, opts.code_uri, action, [uri for _, uri in user] if JOBS[job].runs_user_code else ())
             for job, args in jobs]
    plan = aws.upload_plan(pathlib.Path(opts.bundle), opts.code_uri) + user
    if opts.create:
        operation, request = "run_job_flow", cluster_request(opts, steps, any(aws.uses_delta(a) for _, a in jobs))
    else:
        operation, request = "add_job_flow_steps", {"JobFlowId": opts.cluster_id, "Steps": steps}
    if opts.dry_run:
        for path, uri in plan:
            print(f"would upload {path} -> {uri}", file=sys.stderr)
        aws.print_request(operation, request)
        return 0
    aws.upload(aws.boto3_client("s3", region, opts.endpoint_url), plan)
    emr = aws.boto3_client("emr", region, opts.endpoint_url)
    response = getattr(emr, operation)(**request)
    cluster_id = response.get("JobFlowId", opts.cluster_id)
    step_ids = response.get("StepIds") or [s["Id"] for s in reversed(emr.list_steps(ClusterId=cluster_id)["Steps"])]
    print(f"cluster: {cluster_id}")
    for (job, _), step_id in zip(jobs, step_ids):
        print(f"step {step_id}: {job}")
    print(f"console: https://{region}.console.aws.amazon.com/emr/home?region={region}#/clusterDetails/{cluster_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
