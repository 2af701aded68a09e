"""Scoring a questioned document (stage 4).

document.py            a folder of word images or an order CSV -> images in reading order, the words table
aggregate.py           bag scores -> window and word scores (the index arithmetic is in ``bags/layout.py``)
whole.py               word-level detectors on the whole document; how each model scores documents
calibrated.py          which calibration a document gets (calibration.json / length_calibration.json)
length_calibration.py  evidence per document length, fitted on validation writers' documents
verbal.py              the verbal equivalent of a likelihood ratio (ENFSI 2015 scale)
score.py               ``DocumentScore`` (log10 LR, decisions at 1 %/5 % FPR, passage, per-word evidence)
                       and the pipeline ``score_document`` over explicit model directories
strip.py               ``score.json`` and the ``strip.png`` of word images coloured by their evidence
page.py                a page scan: segment, score, draw the evidence onto the page
"""
