"""The near-duplicate audit: band layouts (pure), the search and clusters in Spark, the leakage policy."""
