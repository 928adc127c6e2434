"""Why a killed run's staging directory is not resumed from (sparkprep.pipeline.resume.refusal): said, never silent."""

from sparkprep import __version__
from sparkprep.pipeline.resume import refusal

SETTINGS = {"ratios": [0.8, 0.1, 0.1], "labels_csv_digest": "aa"}


def test_the_same_settings_and_version_with_a_planned_listing_resume():
    assert refusal({"settings": dict(SETTINGS), "sparkprep": __version__}, SETTINGS, planned=True) is None


def test_each_reason_is_named():
    record = {"settings": dict(SETTINGS), "sparkprep": __version__}
    assert refusal(None, SETTINGS, True) == "it has no resume record"
    assert refusal(dict(record, sparkprep="0.0.1"), SETTINGS, True) == \
        f"it was written by sparkprep 0.0.1, this is {__version__}"
    edited = dict(SETTINGS, labels_csv_digest="bb")
    assert refusal(record, edited, True) == \
        "settings that decide a row changed since the killed run: labels_csv_digest"
    assert refusal(record, {"ratios": [0.8, 0.1, 0.1]}, True) == \
        "settings that decide a row changed since the killed run: labels_csv_digest"  # --labels dropped
    assert refusal(record, SETTINGS, planned=False) == "it has no planned listing"
