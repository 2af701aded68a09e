"""Scoring a questioned document (stage 4).

document.py   a folder of word images or an order CSV -> images in reading order, the words table
aggregate.py  bag scores -> window and word scores (the index arithmetic is in ``bags/layout.py``)
score.py      ``DocumentScore`` and the pipeline ``score_document`` over explicit model directories
strip.py      ``score.json`` and the ``strip.png`` of word images coloured by score
"""
