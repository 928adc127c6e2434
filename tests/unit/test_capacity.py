"""The capacity model and the --plan flags, without Spark."""

import pytest

from sparkprep import capacity
from sparkprep.errors import UsageError
from sparkprep.split.flags import split_config


def test_100m_images_scale_with_nodes_and_name_the_limits():
    work = capacity.Workload(files=100_000_000, bytes=30 * 10**12, job="pipeline", from_s3=True,
                             listed_on_driver=True)
    ten, forty = capacity.estimate(work, 10), capacity.estimate(work, 40)
    # hours are rounded to 0.01: four times forty nodes' figure carries up to 0.02 of rounding
    assert ten["hours"]["compute"] == pytest.approx(4 * forty["hours"]["compute"], abs=0.026)
    # dollars: (nodes + 1) x hours x (EC2 + EMR)
    assert ten["dollars"] == pytest.approx(ten["hours"]["total"] * 11 * (0.768 + 0.192), rel=0.01)
    assert ten["bound_by"] in ("CPU", "network", "GET latency")
    limits = " ".join(ten["limits"])
    assert "--manifest" in limits and "spark.sql.shuffle.partitions" in limits and "per prefix" in limits
    text = capacity.plan_text(ten)
    assert "100,000,000 files" in text and "10 x m5.4xlarge (160 vCPUs)" in text and "cost: $" in text


def test_per_file_cost_grows_with_image_size_and_work():
    small = capacity.estimate(capacity.Workload(1000, 1000 * 100_000, "split", from_s3=False), 1)
    large = capacity.estimate(capacity.Workload(1000, 1000 * 1_000_000, "split", from_s3=False), 1)
    pipeline = capacity.estimate(capacity.Workload(1000, 1000 * 100_000, "pipeline", from_s3=False), 1)
    fetched = capacity.estimate(capacity.Workload(1000, 1000 * 100_000, "split", from_s3=True), 1)
    assert small["core_ms_per_file"] < large["core_ms_per_file"]
    assert small["core_ms_per_file"] < pipeline["core_ms_per_file"]
    assert fetched["core_ms_per_file"] == pytest.approx(small["core_ms_per_file"] + capacity.GET_MS_PER_OBJECT, abs=0.002)
    assert small["limits"] == [] and small["get_per_second"] == 0


def test_a_price_override_replaces_the_list_price():
    work = capacity.Workload(10**6, 10**11)
    assert capacity.estimate(work, 2, "c5.4xlarge", price_per_hour=1.0)["price_per_node_hour"] == 1.0


def test_plan_flags(tmp_path):
    (tmp_path / "in").mkdir()
    base = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "o")]
    cfg = split_config([*base, "--plan", "--plan-nodes", "25", "--plan-instance", "c5.4xlarge"])
    assert (cfg.plan, cfg.plan_nodes, cfg.plan_instance, cfg.plan_price) == (True, 25, "c5.4xlarge", 0.0)
    for bad, said in ((["--plan-nodes", "3"], "--plan-nodes: only with --plan"),
                      (["--plan", "--plan-instance", "x1"], "--plan-instance: expected one of m5.4xlarge"),
                      (["--plan", "--plan-nodes", "0"], "--plan-nodes: expected 1..100000"),
                      (["--plan", "--plan-price", "free"], "--plan-price: expected USD per node-hour")):
        with pytest.raises(UsageError, match=said):
            split_config([*base, *bad])
