"""Every training-free detector of a second writer, the base class of every bag model, and running
any bag model on bags. The lowest layer above :mod:`wrmil_core.metrics`: it imports no other layer.

base.py           ``MILModel`` (the base of every bag model, trained or not: its class attributes
                  say what a detector is, e.g. ``trainable``, ``whole_document``, ``default``)
run.py            the bag-fit check, the forward pass and scoring of any model on bags
distance.py       ``distance``: cosine distance of each window from the rest of its bag
segment_scan.py   ``segment_scan``: one contiguous foreign passage: scan of every run's mean against
                  the rest's, with the estimated passage (first and last word)
scattered.py      ``scattered``: foreign words anywhere: each word's robust distance from a trimmed
                  document centre

The word-level statistics work on ``words: (n_words, dim)`` of any length (and batched on
``(B, n, dim)`` tensors) and return a document statistic whose H0 distribution does not grow with
the length, plus per-word evidence; their MIL wrappers (``SegmentScanMIL``, ``ScatteredMIL``)
read a bag's windows, flattened, as its word sequence.
"""

from wrmil_core.detectors.base import WINDOW_OUTPUTS, MILModel, WindowOutput
from wrmil_core.detectors.distance import DistanceMIL
from wrmil_core.detectors.run import check_bags, forward, score_bags, score_tensor
from wrmil_core.detectors.scattered import ScatteredMIL, ScatteredResult, scattered, scattered_batch
from wrmil_core.detectors.segment_scan import (
    SegmentScanMIL,
    SegmentScanResult,
    segment_scan,
    segment_scan_batch,
)

TRAINING_FREE: tuple[type[MILModel], ...] = (DistanceMIL, SegmentScanMIL, ScatteredMIL)

__all__ = ["TRAINING_FREE", "WINDOW_OUTPUTS", "DistanceMIL", "MILModel", "ScatteredMIL", "ScatteredResult",
           "SegmentScanMIL", "SegmentScanResult", "WindowOutput", "check_bags", "forward", "scattered",
           "scattered_batch", "score_bags", "score_tensor", "segment_scan", "segment_scan_batch"]
