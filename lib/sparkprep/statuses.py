"""Row statuses (docs/contracts.md, Tables): `ok`, or why the row is quarantined.

Defined here only, without pyarrow, so the pure online transform (a Lambda) can name them;
sparkprep.schema re-exports them for every stage.
"""

OK = "ok"
EMPTY = "empty"              # zero-byte file
TOO_LARGE = "too_large"      # over --max-file-bytes; not read
INVALID = "invalid"          # not an image of an allowed format, or an impossible header
CORRUPT = "corrupt"          # the header parses but the data does not decode
BOMB = "decompression_bomb"  # more pixels than --max-pixels
UNREADABLE = "unreadable"    # listed, but its bytes could not be read
NO_GROUP = "no_group"        # --key-by group:REGEX did not match
MISSING_KEY = "missing_key"  # tabular row without a value in the key column
CONFLICTING_LABELS = "conflicting_labels"  # the members of one sample disagree on the label
FILTERED = "filtered"        # the map function returned None: dropped on purpose, and recorded
MAP_ERROR = "map_error"      # the map function raised, or returned a value that does not fit --schema
NO_MEMBERS = "no_members"    # export of a mapped table: an ok sample whose function returned no members
DUPLICATE_KEY = "duplicate_key"  # WebDataset: a sample key in several shards, or a member name twice in one shard
MISSING_LABEL = "missing_label"  # features: a row without a label value
UNSEEN_LABEL = "unseen_label"    # features: a string label the fit split never had (it has no index)
STATUSES = (OK, EMPTY, TOO_LARGE, INVALID, CORRUPT, BOMB, UNREADABLE, NO_GROUP, MISSING_KEY, CONFLICTING_LABELS,
            FILTERED, MAP_ERROR, NO_MEMBERS, DUPLICATE_KEY, MISSING_LABEL, UNSEEN_LABEL)
