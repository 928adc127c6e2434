"""The near-duplicate audit in Spark: the pHash search (search.py) and the crop search (crops.py)."""
