"""Packaging and cloud submission, without Spark: the bundle, and EMR and SageMaker requests
sent to moto's server on 127.0.0.1, which checks them against the AWS service models."""

import hashlib
import json
import zipfile

import boto3
import pytest
from conftest import REPO

from sparkprep.submit import emr, package, sagemaker


@pytest.fixture(scope="module")
def submit(tmp_path_factory):
    """command name -> main(argv), building the bundle in a temporary directory."""
    bundle = str(tmp_path_factory.mktemp("bundle") / "bundle")
    modules = {"emr": emr, "sagemaker": sagemaker}
    yield {name: (lambda argv, m=module: m.main([*argv, "--bundle", bundle])) for name, module in modules.items()}


@pytest.fixture
def bucket(s3_endpoint):
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    name = f"code-{hashlib.sha256(str(id(s3)).encode()).hexdigest()[:8]}"
    s3.create_bucket(Bucket=name)
    return s3, name


def test_bundle_holds_the_library_jobs_profiles_and_bootstrap(tmp_path):
    files = package.build(tmp_path / "bundle")
    assert {"sparkprep.zip", "jobs/split.py", "jobs/preprocess.py", "jobs/export.py", "conf/emr.conf",
            "conf/cluster.conf", "conf/sagemaker.conf", "conf/emr-configurations.json", "bootstrap-emr.sh",
            "requirements-cluster.txt", "sagemaker/configuration.json"} <= set(files)
    names = zipfile.ZipFile(tmp_path / "bundle" / "sparkprep.zip").namelist()
    assert "sparkprep/export/spark.py" in names and "sparkprep/split/assign.py" in names
    again = package.build(tmp_path / "again")
    assert again["sparkprep.zip"] == files["sparkprep.zip"]  # reproducible
    assert "pyspark" not in (tmp_path / "bundle" / "requirements-cluster.txt").read_text().lower()


def test_bundled_emr_configurations_carry_the_emr_profile_and_delta(tmp_path):
    package.build(tmp_path / "bundle")
    configurations = json.loads((tmp_path / "bundle" / "conf" / "emr-configurations.json").read_text())
    by_class = {c["Classification"]: c["Properties"] for c in configurations}
    assert by_class["delta-defaults"] == {"delta.enabled": "true"}
    spark = by_class["spark-defaults"]
    assert spark["spark.sql.files.openCostInBytes"] == "65536" and spark["spark.pyspark.python"] == "python3"
    assert spark["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert spark["spark.jars"].endswith("/usr/share/aws/delta/lib/delta-storage.jar")


@pytest.mark.parametrize("profile", ["local", "cluster", "emr", "sagemaker"])
def test_every_profile_carries_the_tuned_partition_and_arrow_settings(profile):
    properties = package.read_properties(REPO / "conf" / f"{profile}.conf")
    assert properties["spark.sql.files.openCostInBytes"] == "65536"
    assert properties["spark.sql.execution.arrow.maxBytesPerBatch"] == str(16 << 20)
    assert properties["spark.python.worker.reuse"] == "true"


STEP = "split --input s3://data-bkt/raw --output s3://data-bkt/splits --ratios 0.8,0.1,0.1 --format delta"


def test_emr_steps_on_a_running_cluster(submit, bucket, s3_endpoint, capsys):
    s3, name = bucket
    emr = boto3.client("emr", endpoint_url=s3_endpoint)
    cluster = emr.run_job_flow(Name="shared", ReleaseLabel="emr-7.5.0", JobFlowRole="EMR_EC2_DefaultRole",
                               ServiceRole="EMR_DefaultRole", Instances={
                                   "MasterInstanceType": "m5.xlarge", "SlaveInstanceType": "m5.xlarge",
                                   "InstanceCount": 2, "KeepJobFlowAliveWhenNoSteps": True})["JobFlowId"]
    code = f"s3://{name}/sparkprep"
    assert submit["emr"](["--code-uri", code, "--cluster-id", cluster, "--endpoint-url", s3_endpoint,
                               "--region", "us-east-1", "--step", STEP,
                               "--step", "preprocess --input s3://data-bkt/splits --output s3://data-bkt/p"]) == 0
    printed = capsys.readouterr().out
    steps = list(reversed(emr.list_steps(ClusterId=cluster)["Steps"]))
    assert [s["Name"] for s in steps] == ["sparkprep split", "sparkprep preprocess"]
    assert all(s["Id"] in printed for s in steps) and "console.aws.amazon.com/emr" in printed
    split_args = steps[0]["Config"]["Args"]
    assert split_args[:5] == ["spark-submit", "--deploy-mode", "cluster", "--py-files", f"{code}/sparkprep.zip"]
    assert split_args[-9:] == [f"{code}/jobs/split.py", *STEP.split()[1:]]
    assert "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension" in split_args  # --format delta
    assert "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension" not in steps[1]["Config"]["Args"]
    assert steps[0]["ActionOnFailure"] == "CANCEL_AND_WAIT" and steps[0]["Config"]["Jar"] == "command-runner.jar"
    uploaded = s3.get_object(Bucket=name, Key="sparkprep/sparkprep.zip")["Body"].read()
    manifest = json.loads(s3.get_object(Bucket=name, Key="sparkprep/bundle.json")["Body"].read())
    assert hashlib.sha256(uploaded).hexdigest() == manifest["sparkprep.zip"]["sha256"]


def test_emr_transient_cluster_dry_run_request_is_accepted_by_the_emr_api(submit, s3_endpoint, capsys):
    assert submit["emr"](["--code-uri", "s3://any-bkt/code", "--create", "--dry-run", "--log-uri",
                               "s3://any-bkt/logs/", "--step", STEP]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["operation"] == "run_job_flow"
    request = printed["request"]
    assert request["Steps"][0]["ActionOnFailure"] == "TERMINATE_CLUSTER"
    assert request["BootstrapActions"][0]["ScriptBootstrapAction"]["Path"] == "s3://any-bkt/code/bootstrap-emr.sh"
    emr = boto3.client("emr", endpoint_url=s3_endpoint)
    cluster = emr.run_job_flow(**request)["JobFlowId"]
    described = emr.describe_cluster(ClusterId=cluster)["Cluster"]
    assert {c["Classification"] for c in described["Configurations"]} == {"spark-defaults", "delta-defaults"}
    assert emr.list_bootstrap_actions(ClusterId=cluster)["BootstrapActions"][0]["Args"] == [
        "s3://any-bkt/code/requirements-cluster.txt"]


def test_sagemaker_processing_job_maps_s3_channels_and_keeps_the_job_flags(submit, bucket, s3_endpoint, capsys):
    s3, name = bucket
    code = f"s3://{name}/sparkprep"
    assert submit["sagemaker"]([
        "--code-uri", code, "--role", "arn:aws:iam::123456789012:role/SageMakerProcessing", "--no-sdk",
        "--endpoint-url", s3_endpoint, "--region", "us-east-1", "--job-name", "sparkprep-split-test",
        "--instance-type", "ml.m5.2xlarge", "--step",
        "split --input s3://data-bkt/raw --output s3://data-bkt/splits --seed 7"]) == 0
    job = boto3.client("sagemaker", endpoint_url=s3_endpoint).describe_processing_job(
        ProcessingJobName="sparkprep-split-test")
    app = job["AppSpecification"]
    assert app["ImageUri"].endswith("/sagemaker-spark-processing:3.3-cpu-py39-v1.0")
    assert app["ContainerEntrypoint"] == ["smspark-submit", "--py-files", "/opt/ml/processing/input/py-files",
                                          "/opt/ml/processing/input/code/split.py"]
    assert app["ContainerArguments"] == ["--input", "/opt/ml/processing/input/input",
                                         "--output", "/opt/ml/processing/output/data", "--seed", "7"]
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in job["ProcessingInputs"]}
    # a directory channel ends with '/': S3Prefix s3://data-bkt/raw would also pull raw-old/ and raw.bak
    assert inputs == {"code": f"{code}/jobs/split.py", "py-files": f"{code}/sparkprep.zip",
                      "conf": f"{code}/sagemaker/configuration.json", "input": "s3://data-bkt/raw/"}
    assert job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] == "s3://data-bkt/splits"
    conf = json.loads(s3.get_object(Bucket=name, Key="sparkprep/sagemaker/configuration.json")["Body"].read())
    assert conf[0]["Classification"] == "spark-defaults"
    assert "sparkprep-split-test" in capsys.readouterr().out


def test_sagemaker_maps_files_as_files_and_directories_with_a_trailing_slash():
    from sparkprep.submit.sagemaker import map_io

    args, inputs, _ = map_io(["--input", "s3://b/rows/data.v2", "--labels", "s3://b/meta/labels.csv",
                              "--output", "s3://b/out"], "mapped")
    assert [i["S3Input"]["S3Uri"] for i in inputs] == ["s3://b/rows/data.v2/", "s3://b/meta/labels.csv"]
    assert args[:4] == ["--input", "/opt/ml/processing/input/input", "--labels",
                        "/opt/ml/processing/input/labels/labels.csv"]


def test_sagemaker_dry_run_request_is_accepted_and_direct_io_passes_s3_through(submit, s3_endpoint, capsys):
    assert submit["sagemaker"]([
        "--code-uri", "s3://any-bkt/code", "--role", "arn:aws:iam::123456789012:role/SM", "--dry-run",
        "--io", "direct", "--instance-count", "3", "--job-name", "sparkprep-direct",
        "--step", "preprocess --input s3://data-bkt/splits --output s3://data-bkt/processed --size 224"]) == 0
    request = json.loads(capsys.readouterr().out)["request"]
    assert request["AppSpecification"]["ContainerArguments"][:4] == [
        "--input", "s3://data-bkt/splits", "--output", "s3://data-bkt/processed"]
    assert request["ProcessingResources"]["ClusterConfig"] == {
        "InstanceCount": 3, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30}
    sagemaker = boto3.client("sagemaker", endpoint_url=s3_endpoint)
    sagemaker.create_processing_job(**request)
    described = sagemaker.describe_processing_job(ProcessingJobName="sparkprep-direct")
    assert described["AppSpecification"] == request["AppSpecification"]


@pytest.mark.parametrize("script,argv,message", [
    ("emr", ["--code-uri", "s3://b-k/c", "--cluster-id", "j-1", "--step", "split --ratios 0.5"],
     "sparkprep-submit-emr: error: --step split: --input: expected a path"),
    ("emr", ["--code-uri", "s3://b-k/c", "--cluster-id", "j-1", "--step", "train --input x"],
     "sparkprep-submit-emr: error: --step: expected"),
    ("emr", ["--code-uri", "/local/path", "--create", "--step", STEP], "sparkprep-submit-emr: error: expected s3://"),
    ("sagemaker", ["--code-uri", "s3://b-k/c", "--role", "r", "--instance-count", "2",
                   "--step", "split --input s3://b-k/raw --output s3://b-k/out"],
     "sparkprep-submit-sagemaker: error: --io mapped: expected --instance-count 1"),
    ("sagemaker", ["--code-uri", "s3://b-k/c", "--step", STEP], "sparkprep-submit-sagemaker: error: the following arguments"),
])
def test_bad_usage_exits_2_with_one_line(submit, script, argv, message, capsys):
    assert submit[script](argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_sagemaker_mapped_output_onto_a_non_empty_prefix_is_refused(submit, bucket, s3_endpoint, capsys):
    s3, name = bucket
    s3.create_bucket(Bucket="stale-bkt")
    s3.put_object(Bucket="stale-bkt", Key="splits/split=train/part-00000.parquet", Body=b"old run")
    assert submit["sagemaker"]([
        "--code-uri", f"s3://{name}/sparkprep", "--role", "arn:aws:iam::123456789012:role/SM", "--no-sdk",
        "--endpoint-url", s3_endpoint, "--region", "us-east-1", "--job-name", "sparkprep-stale",
        "--step", "split --input s3://stale-bkt/raw --output s3://stale-bkt/splits"]) == 2
    err = capsys.readouterr().err
    assert "s3://stale-bkt/splits is not empty" in err and len(err.strip().splitlines()) == 1
    jobs = boto3.client("sagemaker", endpoint_url=s3_endpoint).list_processing_jobs()["ProcessingJobSummaries"]
    assert "sparkprep-stale" not in {j["ProcessingJobName"] for j in jobs}


def test_a_pipeline_step_is_checked_by_the_pipeline_parser():
    from sparkprep.submit import aws

    job, args = aws.parse_step("pipeline --input s3://b/raw --output s3://b/out --to webdataset --shard-size 64MB")
    assert job == "pipeline" and args[-1] == "64MB"
    with pytest.raises(aws.SubmitUsageError, match="--step pipeline: --keep"):
        aws.parse_step("pipeline --input s3://b/raw --output s3://b/out --keep all")


def test_a_map_step_ships_the_users_module_to_emr_and_sagemaker(submit, s3_endpoint, capsys, tmp_path):
    (tmp_path / "mymod.py").write_text("def fn(sample):\n    return {'n': 1}\n")
    step = "map --input s3://data-bkt/splits --output s3://data-bkt/mapped --map mymod:fn --schema 'n long'"
    assert submit["emr"](["--code-uri", "s3://any-bkt/code", "--create", "--dry-run", "--py-files",
                          str(tmp_path / "mymod.py"), "--step", step]) == 0
    said = capsys.readouterr()
    assert "-> s3://any-bkt/code/user/mymod.py" in said.err
    request = json.loads(said.out)["request"]
    args = request["Steps"][0]["HadoopJarStep"]["Args"]
    assert "s3://any-bkt/code/user/mymod.py" in args[args.index("--py-files") + 1]
    boto3.client("emr", endpoint_url=s3_endpoint).run_job_flow(**request)
    assert submit["sagemaker"](["--code-uri", "s3://any-bkt/code", "--role", "arn:aws:iam::123456789012:role/SM",
                                "--dry-run", "--io", "direct", "--job-name", "sparkprep-map", "--py-files",
                                str(tmp_path / "mymod.py"), "--step", step]) == 0
    said = capsys.readouterr()
    request = json.loads(said.out)["request"]
    assert "-> s3://any-bkt/code/user/sparkprep-map/mymod.py" in said.err
    user_code = [i for i in request["ProcessingInputs"] if i["S3Input"]["S3Uri"].endswith("/user/sparkprep-map/")]
    assert user_code and user_code[0]["S3Input"]["LocalPath"] in json.dumps(request["AppSpecification"])
    boto3.client("sagemaker", endpoint_url=s3_endpoint).create_processing_job(**request)
