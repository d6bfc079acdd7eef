"""The synthetic world: deterministic, and every label, tag and answer span is consistent with the text."""

import json
import re
from collections import Counter

import pytest

from bertkit.data.classification import read_classification_file
from bertkit.data.ner import read_ner_file, split_words, tag_spans
from bertkit.data.squad import read_squad
from bertkit.quickstart import world as W

SMALL = W.WorldConfig(seed=3, pretrain_stories=40, train_stories=60, dev_stories=20, questions_per_story=3)


@pytest.fixture(scope="module")
def small():
    return W.generate_world(SMALL)


def all_stories(world):
    return world.pretrain + world.train + world.dev


def test_same_config_same_world_and_same_bytes(small, tmp_path):
    again = W.generate_world(SMALL)
    assert [s.text for s in all_stories(small)] == [s.text for s in all_stories(again)]
    assert [[q.question for q in s.questions] for s in small.dev] == [[q.question for q in s.questions]
                                                                       for s in again.dev]
    a, b = small.write(str(tmp_path / "a")), again.write(str(tmp_path / "b"))
    for name in a:
        assert open(a[name], "rb").read() == open(b[name], "rb").read(), name


def test_other_seed_other_world_and_splits_differ(small):
    other = W.generate_world(W.WorldConfig(seed=4, pretrain_stories=5, train_stories=5, dev_stories=5))
    assert [s.text for s in other.train] != [s.text for s in small.train[:5]]
    assert not {s.text for s in small.dev} & {s.text for s in small.train + small.pretrain}


def test_tags_align_with_words_and_offsets(small):
    for story in all_stories(small):
        for sentence in story.sentences:
            assert len(sentence.words) == len(sentence.tags) == len(sentence.offsets)
            # the words are exactly what the NER reader/serving split the raw sentence into
            assert [w for w, _, _ in split_words(sentence.text)] == sentence.words
            assert [sentence.text[s:e] for s, e in sentence.offsets] == sentence.words
            for i, tag in enumerate(sentence.tags):  # valid IOB2: I-X continues an X entity
                assert tag == "O" or re.fullmatch(r"[BI]-(PER|LOC|ORG|OBJ)", tag), tag
                if tag.startswith("I-"):
                    assert sentence.tags[i - 1][2:] == tag[2:] and sentence.tags[i - 1] != "O"


def test_entities_come_from_the_lists(small):
    people = set(W.FIRST_NAMES) | {f"{f} {s}" for f in W.FIRST_NAMES for s in W.SURNAMES}
    lists = {"PER": people, "LOC": set(W.PLACES), "ORG": set(W.ORGANISATIONS), "OBJ": set(W.OBJECTS)}
    seen = Counter()
    for story in all_stories(small):
        for sentence in story.sentences:
            for etype, first, last in tag_spans(sentence.tags):
                text = " ".join(sentence.words[first:last + 1])
                assert text in lists[etype], (etype, text)
                seen[etype] += 1
    assert set(seen) == set(W.ENTITY_TYPES)


def _topic_of(sentence_text):
    for topic, templates in W.TOPIC_TEMPLATES.items():
        for template in templates:
            pattern = re.escape(template).replace(re.escape("{P}"), r"\w+")
            if re.fullmatch(pattern, sentence_text):
                return topic
    return None


def test_label_is_the_topic_with_most_cue_sentences(small):
    labels = Counter()
    for story in all_stories(small):
        cues = Counter(t for t in map(_topic_of, (s.text for s in story.sentences)) if t)
        assert cues[story.label] == 2 and sum(cues.values()) <= 3, (story.label, cues)
        labels[story.label] += 1
    assert set(labels) == set(W.LABELS)


def test_every_answer_is_at_its_start_and_unambiguous(small):
    kinds = Counter()
    values = list(W.PLACES) + list(W.ORGANISATIONS) + list(W.OBJECTS)
    for story in small.train + small.dev:
        context = story.text
        assert len(story.questions) == SMALL.questions_per_story
        for q in story.questions:
            assert q.answers
            for a in q.answers:
                assert context[a["answer_start"]: a["answer_start"] + len(a["text"])] == a["text"]
            kinds[q.kind] += 1
            relation, asks = q.kind.split("/")
            if asks == "person":
                # the place / organisation / object asked about occurs once: one sentence answers
                named = [v for v in values if v in q.question]
                assert len(named) == (0 if relation == "friend" else 1), q.question
                assert all(context.count(v) == 1 for v in named)
                # every answer is a form of one person's name (full or first)
                first = q.answers[0]["text"].split()[0]
                assert all(a["text"].split()[0] == first for a in q.answers)
            else:  # a value (place, organisation, object, day) that occurs once in the story
                assert context.count(q.answers[0]["text"]) == 1, (q.question, q.answers, context)
    assert {k.split("/")[0] for k in kinds} == {"home", "friend", "work", "trip", "object"}


def test_each_relation_once_per_story(small):
    for story in small.train:
        sentences = [s.text for s in story.sentences]
        assert sum(" lives in " in s for s in sentences) == 1
        assert sum(" works " in s for s in sentences) == 1
        assert sum(" went to " in s for s in sentences) == 1
        assert sum(" carried " in s for s in sentences) == 1


def test_stories_fit_a_96_piece_window_with_the_question(small):
    # with the world's own vocab every word is one piece: [CLS] question [SEP] story [SEP] fits 96
    longest = max(len(split_words(s.text)) for s in all_stories(small))
    assert longest <= 80


def test_files_read_back_with_the_task_readers(small, tmp_path):
    paths = small.write(str(tmp_path))
    corpus = open(paths["corpus"], encoding="utf-8").read()
    assert corpus.count("\n\n") == len(small.pretrain) + len(small.train) - 1
    classify = read_classification_file(paths["classify_dev"])
    assert [(e.text, e.label) for e in classify] == [(s.text, s.label) for s in small.dev]
    ner = read_ner_file(paths["ner_train"])
    assert [e.words for e in ner] == [s.words for story in small.train for s in story.sentences]
    assert [e.tags for e in ner] == [s.tags for story in small.train for s in story.sentences]
    squad = read_squad(paths["qa_dev"])  # raises if an answer is not at its answer_start
    assert len(squad) == sum(len(s.questions) for s in small.dev)
    assert json.load(open(paths["qa_dev"]))["version"] == "1.1"


def test_world_module_command_writes_the_files(tmp_path, capsys):
    assert W.main(["--out", str(tmp_path), "--pretrain-stories", "3", "--train-stories", "2",
                   "--dev-stories", "2"]) == 0
    printed = capsys.readouterr().out
    for name in ("corpus.txt", "corpus_dev.txt", "classify_train.tsv", "ner_dev.conll", "qa_train.json"):
        assert (tmp_path / name).stat().st_size > 0 and name in printed


def cue_topics(text: str) -> list[str]:
    """The topic of each topic sentence of `text` (each sentence is one template with a name)."""
    found = []
    for sentence in re.split(r"(?<=\.) ", text):
        matches = [t for t, templates in W.TOPIC_TEMPLATES.items()
                   if any(re.fullmatch(re.escape(tpl).replace(r"\{P\}", r"\w+"), sentence) for tpl in templates)]
        assert len(matches) == 1, sentence
        found.append(matches[0])
    return found


def test_multilabel_and_regression_files_match_their_sentences(small, tmp_path):
    """Multi-label: the labels are the topics of the text's sentences; regression: the score is 5 x
    the share of its sentences about sports. Both read back with the task readers."""
    from bertkit.tasks import TASKS

    paths = small.write(str(tmp_path))
    multilabel = TASKS["multilabel"](header=False).read(paths["multilabel_train"])
    assert len(multilabel) == len(small.train)
    assert {len(e.label.split(",")) for e in multilabel} == {1, 2, 3}
    for e in multilabel:
        assert e.label.split(",") == sorted(set(cue_topics(e.text)))
    regression = TASKS["regression"](header=False).read(paths["regression_dev"])
    assert len(regression) == len(small.dev) and {e.label for e in regression} >= {"0.00", "5.00", "2.50"}
    for e in regression:
        topics = cue_topics(e.text)
        assert float(e.label) == pytest.approx(5 * topics.count("sports") / len(topics), abs=0.005)
