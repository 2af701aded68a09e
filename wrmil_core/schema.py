"""Table contracts shared by every stage.

Each artifact that crosses a stage boundary is a polars DataFrame written to Parquet.
The column names and dtypes below are the contract; producers build exactly these columns
(extra columns are allowed only where noted) and consumers may rely on them.

words (raw ingest, one row per word image, all splits)
    word_id     Int64   0..N-1, unique over the whole data set, stable for a given data root
    writer      Int64   writer id (the metadata ``label`` column)
    doc_id      Utf8    document id; default ``f"{writer}_s{session}"``
    position    Int32   reading order inside the document, 0..len(doc)-1, no gaps
    path        Utf8    absolute path of the word image
    text        Utf8    transcription (``detected_word``), may be empty
    repetition  Int32   repetition number from the metadata
    session     Int32   ``repetition // reps_per_session`` (or -1 when doc_id was given)

splits (writer_split)
    writer      Int64
    split       Utf8    one of SPLITS

embeddings (word_embeddings[split])
    word_id, writer, doc_id, position   as in ``words``
    emb         Array(Float32, dim)     L2-normalised writer embedding
    model_id    Utf8                    id of the embedding model that produced the vector

windows (instance_windows[split])
    window_id   Int64   0..W-1 inside the split
    doc_id      Utf8
    writer      Int64
    start       Int32   position of the first word in the document
    word_ids    Array(Int32, window_size)
    model_id    Utf8    embedding model id carried from the embeddings table

bags (bags_by_difficulty[split])
    bag_id              Int64
    split               Utf8
    doc_id              Utf8
    base_writer         Int64
    donor_writer        Int64 (null for genuine bags); for "two_donors" the writer of the first passage
    donor_writer_2      Int64   writer of the second passage of a "two_donors" bag (null otherwise)
    label               Int8    0 = one writer (genuine), 1 = contaminated
    ratio               Float64 nominal contamination ratio, 0.0 for genuine bags
    foreign_word_frac   Float64 true fraction of the bag's words written by the donor(s)
    foreign_window_frac Float64 fraction of the bag's windows holding >= 1 foreign word
    word_ids            Array(Int32, bag_size * window_size)  row-major (window, word)
    window_foreign      Array(Boolean, bag_size)
    mode                Utf8    "word" or "instance"
    geometry            Utf8    "contiguous", "scattered" or "two_donors" (where the foreign words sit and
                                how many donors wrote them), "none" for genuine bags
    model_id            Utf8    embedding model id the bags were built against
"""

from __future__ import annotations

SPLITS: tuple[str, ...] = ("train", "val", "test")

WORD_COLUMNS: tuple[str, ...] = (
    "word_id", "writer", "doc_id", "position", "path", "text", "repetition", "session",
)
SPLIT_COLUMNS: tuple[str, ...] = ("writer", "split")
EMBEDDING_COLUMNS: tuple[str, ...] = ("word_id", "writer", "doc_id", "position", "emb", "model_id")
WINDOW_COLUMNS: tuple[str, ...] = ("window_id", "doc_id", "writer", "start", "word_ids", "model_id")
BAG_COLUMNS: tuple[str, ...] = (
    "bag_id", "split", "doc_id", "base_writer", "donor_writer", "donor_writer_2", "label", "ratio",
    "foreign_word_frac", "foreign_window_frac", "word_ids", "window_foreign", "mode", "geometry", "model_id",
)

DEFAULT_RATIOS: tuple[float, ...] = (0.05, 0.10, 0.20, 0.30)

# The raw layout's defaults (the original CSAFE "naver_ocr" export): one home for every stage,
# the settings resource and the synthetic generator.
DEFAULT_METADATA_CSV: str = "naver_ocr.csv"
DEFAULT_REPS_PER_SESSION: int = 9
