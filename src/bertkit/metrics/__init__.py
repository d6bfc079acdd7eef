"""Evaluation metrics, numpy / pure Python: classification, NER (seqeval), SQuAD (official script)."""
