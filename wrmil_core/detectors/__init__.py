"""Training-free word-level detectors of a second writer, on one document's word vectors.

Each works on ``words: (n_words, dim)`` of any length (and batched on ``(B, n, dim)`` tensors) and
returns a document statistic whose H0 distribution does not grow with the length, plus per-word
evidence:

segment_scan.py   one contiguous foreign passage: scan of every run's mean against the rest's,
                  with the estimated passage (first and last word)
scattered.py      foreign words anywhere: each word's robust distance from a trimmed document centre

``wrmil_core.mil.models`` wraps them as the training-free MIL models ``segment_scan`` and
``scattered``.
"""

from wrmil_core.detectors.scattered import ScatteredResult, scattered, scattered_batch
from wrmil_core.detectors.segment_scan import (
           SegmentScanResult,
           segment_scan,
           segment_scan_batch,
)

__all__ = ["ScatteredResult", "SegmentScanResult", "scattered", "scattered_batch", "segment_scan",
           "segment_scan_batch"]
