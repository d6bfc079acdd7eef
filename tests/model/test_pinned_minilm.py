"""The real all-MiniLM-L6-v2 against numbers pinned from HF transformers (BertTokenizerFast + BertModel,
fp32, transformers 5 / torch 2.13, computed once): token ids and a slice of the sequence and pooled
outputs. Runs without torch, so the numerics are checked wherever bertkit is installed."""

import numpy as np

TEXTS = ["The quick brown fox jumps over the lazy dog.", "Héllo, wörld! 42 ünïcode", "bertkit"]
INPUT_IDS = [[101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 1012, 102],
             [101, 7592, 1010, 2088, 999, 4413, 27260, 102, 0, 0, 0, 0],
             [101, 14324, 23615, 102, 0, 0, 0, 0, 0, 0, 0, 0]]
# sequence_output[:, :3, :4]
FIRST_TOKENS = [[[0.046444, 0.338061, 0.208205, 0.646798], [0.116218, 0.226352, 0.102073, 0.734835],
                 [0.153727, 0.172984, 0.5151, -0.095321]],
                [[0.338915, 0.079627, 0.04254, 0.359995], [-0.106832, 0.121403, 0.689034, 0.210837],
                 [-0.05616, 0.100425, 0.140134, 0.230237]],
                [[-0.194537, 0.098717, -0.056315, -0.2578], [-0.546315, -0.185479, -0.075871, -0.362657],
                 [-0.743269, 0.038475, -0.22012, -0.038591]]]
# sequence_output at each row's [SEP], last 4 features
SEP_TOKENS = [[0.395028, 0.146279, 0.174254, 0.558562], [0.660698, 0.594863, -0.013929, -0.004918],
              [0.697262, 0.095253, 0.288705, 0.690593]]
# pooled_output[:, :6]
POOLED = [[-0.066271, 0.028093, 0.070613, 0.116599, -0.015158, -0.102409],
          [-0.077705, 0.027915, 0.035326, 0.052194, 0.001578, -0.060899],
          [0.001033, 0.087723, 0.091895, 0.017468, -0.035635, -0.018856]]


def test_minilm_outputs_equal_the_pinned_reference(minilm_path):
    from bertkit.pretrained import load_pretrained
    from bertkit.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(minilm_path)
    ids = [list(e.ids) for e in tokenizer.encode_batch(TEXTS, add_special_tokens=True)]
    assert ids == [[i for i in row if i] for row in INPUT_IDS]
    input_ids = np.array(INPUT_IDS, np.int32)
    mask = (input_ids != 0).astype(np.int32)
    outputs = load_pretrained(minilm_path)({"input_ids": input_ids, "token_type_ids": np.zeros_like(input_ids),
                                            "attention_mask": mask})
    sequence, pooled = outputs["sequence_output"].numpy(), outputs["pooled_output"].numpy()
    np.testing.assert_allclose(sequence[:, :3, :4], FIRST_TOKENS, atol=2e-5)
    sep = mask.sum(axis=1) - 1
    np.testing.assert_allclose(sequence[np.arange(3), sep, -4:], SEP_TOKENS, atol=2e-5)
    np.testing.assert_allclose(pooled[:, :6], POOLED, atol=2e-5)
