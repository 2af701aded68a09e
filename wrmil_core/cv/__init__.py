"""Writer-fold cross-validation: the whole chain once per writer fold, figures pooled over all writers.

``fold.run_fold`` trains and evaluates one fold (embedding, windows, bags, detectors) with the
functions the main pipeline's assets call; ``pool.pool_folds`` pools the folds' test results over
every writer; ``report`` writes the Markdown/JSON report whose first line says how many writers
and documents stand behind the figures. The fold assignment itself is ``wrmil_core.data.folds``.
"""
