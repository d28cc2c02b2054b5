"""Reader markers and Arrow helpers shared by the file readers (``connectors``) and the checks
(``schemas``): the cell marker for bytes that decode in no encoding, and the zero-copy view of an
Arrow string array's bytes."""
from __future__ import annotations

import numpy as np

UNDECODABLE = "\ufffd"


def value_bytes(a) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, bytes) of an Arrow large string or binary array, without a copy: value i is
    ``data[offsets[i] - offsets[0]:offsets[i + 1] - offsets[0]]``."""
    offsets = np.frombuffer(a.buffers()[1], np.int64)[a.offset:a.offset + len(a) + 1]
    data = a.buffers()[2]
    data = np.frombuffer(data, np.uint8)[offsets[0]:offsets[-1]] if len(a) and data else np.zeros(0, np.uint8)
    return offsets, data
