"""The quickstart: the whole BERT pipeline on a synthetic world, offline, in minutes.

    bertkit quickstart                      # world -> vocab -> pretrain -> fine-tune x3 -> export -> requests
    bertkit quickstart --corpus my.txt --classify-train train.tsv --classify-dev dev.tsv   # your data

`world` generates the data (deterministic, seeded); `pipeline` runs the steps; `heldout` scores the
pretrained model against the unigram baseline; `report` writes the report folder.
"""
