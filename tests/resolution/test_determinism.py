"""The same scored pairs give the same clusters whatever order DuckDB returned them in (it returns
them in a different order from run to run): equal weights are taken in record order."""
from __future__ import annotations

import numpy as np
import pandas as pd

from dealersync.resolution import engine


def test_equal_weights_are_joined_in_record_order_not_in_arrival_order():
    # record 0 agrees with 1 and with 2 equally; 1 and 2 hold different valid IDs: only one join can win
    ids = np.array([None, "110105198506151238", "110105198001011234"], dtype=object)
    pairs = pd.DataFrame({"l": [0, 0], "r": [2, 1], "weight": [9.0, 9.0], "decision": [engine.MERGE] * 2})
    got = {tuple(engine.cluster(3, p, ids=ids)) for p in (pairs, pairs.iloc[::-1].reset_index(drop=True))}
    assert got == {(0, 0, 2)}
