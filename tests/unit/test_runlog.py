"""The run log: the stage clock's durations and Spark job counts, and the summary's time line."""

import io

from sparkprep.runlog import StageClock, jobs_words


def test_the_clock_counts_the_jobs_each_stage_starts_and_adds_up_a_stage_met_twice():
    started = [5]  # the application had started 5 jobs before this run
    clock = StageClock("split", out=io.StringIO(), jobs=lambda: started[0])
    clock.stage("writing")
    started[0] += 3
    clock.stage("counting")
    started[0] += 2
    clock.stage("writing")
    started[0] += 1
    jobs = clock.spark_jobs()
    assert jobs == {"total": 6, "by_stage": {"writing": 4, "counting": 2}}
    assert jobs_words({"spark_jobs": jobs}) == ", 6 Spark jobs"


def test_without_a_counter_nothing_is_claimed():
    clock = StageClock("split", out=io.StringIO())
    clock.stage("writing")
    assert clock.spark_jobs() is None and jobs_words({"spark_jobs": None}) == ""
