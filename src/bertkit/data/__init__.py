"""Task data: readers for the fine-tuning file formats and their featurizers.

`classification` (TSV/CSV/JSON Lines), `ner` (CoNLL columns, JSON Lines), `squad` (SQuAD v1.1/v2.0);
`common` holds what they share (windows over long sequences, padding, the tf.data builder).
Modules are imported explicitly (`from bertkit.data import squad`) so that no TensorFlow is loaded
until a dataset is actually built.
"""
