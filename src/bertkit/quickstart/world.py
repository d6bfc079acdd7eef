"""A deterministic synthetic "world": short stories about people, places, organisations and objects.

Every story comes with everything the quickstart trains on:

  * its text, one sentence per line (pretraining corpus: a story is a document, so next-sentence
    prediction can tell a story's own continuation by its names);
  * a topic label (classification): `sports`, `music`, `food` or `science`, decided by lexical cues:
    two sentences of the story's topic, sometimes plus one "distractor" sentence of another topic,
    so the label is the topic with the most cue sentences;
  * entity tags (NER) in IOB2 over the words of each sentence: PER (people), LOC (towns), ORG
    (companies and institutions) and OBJ (objects, an adjective and a noun); words are CoNLL-style,
    as `bertkit.data.ner.split_words` splits raw text (punctuation marks are words of their own);
  * questions with answer spans (QA, SQuAD v1.1): "Where does Anna live?", "Who works at Orion
    Labs?", "When did Boris go to Port Ellis?" - answerable from the story only, because every
    story has two or three people whose towns, employers, trips and objects all differ.

Two more tasks are built from the topic sentences alone, each split with its own random stream:
  * multi-label: 2-5 topic sentences of one to three topics -> the set of topics;
  * regression: 2-4 topic sentences -> how much of the text is about sports, 0-5 (the share of
    its sentences on sports, times 5).

Names come from fixed lists and are placed in varied templates, so a model has to use both the
words and their context. Generation is seeded (`random.Random` with a string seed per split): the
same `WorldConfig` always gives the same files, byte for byte.

    from bertkit.quickstart.world import WorldConfig, generate_world
    world = generate_world(WorldConfig(train_stories=1000, dev_stories=200))
    files = world.write("quickstart_out/data")   # corpus.txt, classify_*.tsv, ner_*.conll, qa_*.json, ...
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re

# --- the world's inventory ---------------------------------------------------------------------------

FIRST_NAMES = (
    "Anna", "Boris", "Clara", "Dmitri", "Elena", "Felix", "Greta", "Hugo", "Iris", "Jonas", "Kira", "Leon",
    "Mira", "Nils", "Olga", "Pavel", "Rosa", "Sven", "Tara", "Viktor", "Wanda", "Xenia", "Yuri", "Zora",
    "Amir", "Bianca", "Carlos", "Dalia", "Emil", "Fatima", "Gustav", "Hana", "Ivan", "Julia", "Karim",
    "Lena", "Marco", "Nadia", "Oscar", "Priya", "Quentin", "Rita", "Samir", "Tomas", "Ursula", "Vera",
    "Walter", "Yara", "Zeno", "Agnes",
)
SURNAMES = (
    "Berg", "Costa", "Dahl", "Engel", "Fischer", "Garcia", "Holm", "Ito", "Jensen", "Kowalski", "Lind",
    "Moreau", "Novak", "Okafor", "Petrov", "Quinn", "Rossi", "Sato", "Tanaka", "Ulrich", "Varga", "Weber",
    "Young", "Zimmer", "Andersen", "Bauer", "Castillo", "Duval", "Eriksen", "Ferreira",
)
PLACES = (
    "Ashford", "Brackwater", "Port Ellis", "Silver Lake", "Kingsbridge", "Eastmoor", "Glenhaven", "Harrow Bay",
    "Ironvale", "Juniper Falls", "Lowmarsh", "Millbrook", "North Cove", "Oakridge", "Pinecrest", "Redcliff",
    "Stonebridge", "Thornbury", "Upper Fenwick", "Westport", "Willowdale", "Yarrow Point", "Cedar Hill",
    "Dunmore", "Fairhaven", "Greystone", "Hollow Creek", "Lakeside", "New Aldwin", "Ravenholm", "Saltmarsh",
    "Elmstead", "Brightwater", "Foxley", "Marble Rock", "Old Harbor",
)
ORGANISATIONS = (
    "Northwind Bakery", "Riverside Library", "Orion Labs", "Harbor Bank", "Bluebell Cafe", "Summit Motors",
    "Greenleaf Clinic", "Copper Kettle Inn", "Atlas Shipping", "Maple Street School", "Star Radio",
    "Granite Works", "Lumen Studios", "Pioneer Post", "Silverline Rail", "Sparrow Books", "Tidewater Museum",
    "Valley Farms", "Zenith Hotel", "Crescent Theater", "Ironwood Mills", "Beacon Insurance",
    "Redwood Pharmacy", "Polar Ice Company", "Falcon Airlines",
)
ADJECTIVES = ("red", "brass", "old", "tiny", "wooden", "silver", "green", "heavy", "broken", "striped",
              "golden", "leather", "blue", "antique")
NOUNS = ("umbrella", "lantern", "map", "compass", "suitcase", "kettle", "camera", "notebook", "bicycle",
         "telescope", "basket", "key", "clock", "scarf", "hammer", "radio", "mirror", "backpack")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
TRANSPORT = ("train", "bus", "boat", "bicycle", "car")

OBJECTS = tuple(f"{a} {n}" for a in ADJECTIVES for n in NOUNS)

LABELS = ("sports", "music", "food", "science")
ENTITY_TYPES = ("PER", "LOC", "ORG", "OBJ")

# Topic cue sentences: the classification signal. {P} is a person of the story (a PER entity).
TOPIC_TEMPLATES = {
    "sports": (
        "{P} practiced with the team before the final match.",
        "The coach told {P} to run faster in the second half.",
        "{P} scored a goal and the crowd cheered loudly.",
        "After the game, {P} stretched on the field and drank water.",
        "{P} won a medal in the swimming race.",
        "The referee blew the whistle as {P} kicked the ball.",
        "{P} trained for the marathon every morning.",
        "The players lifted {P} onto their shoulders after the victory.",
    ),
    "music": (
        "{P} played the piano at the evening concert.",
        "The choir sang while {P} tuned the violin.",
        "{P} wrote a new song with a slow melody.",
        "The audience clapped when {P} finished the symphony.",
        "{P} practiced scales on the guitar for an hour.",
        "The band asked {P} to sing the chorus again.",
        "{P} listened to an old record of jazz and hummed along.",
        "The conductor thanked {P} for the beautiful solo.",
    ),
    "food": (
        "{P} baked fresh bread and a lemon cake.",
        "{P} cooked a spicy soup with garlic and onions.",
        "The chef showed {P} how to slice the vegetables.",
        "{P} tasted the sauce and added more salt.",
        "For dinner, {P} roasted potatoes in the oven.",
        "{P} bought cheese and ripe tomatoes at the market.",
        "The waiter brought {P} a plate of noodles with mushrooms.",
        "{P} shared a recipe for apple pie with the neighbours.",
    ),
    "science": (
        "{P} measured the temperature of the liquid in the lab.",
        "{P} looked at the cells under a microscope.",
        "The professor asked {P} to repeat the experiment.",
        "{P} wrote down the results in a careful table.",
        "{P} studied the orbit of a distant planet.",
        "{P} mixed two chemicals and watched the reaction.",
        "The journal published the theory that {P} had tested.",
        "{P} collected data about the magnetic field of the rocks.",
    ),
}

# Fact sentences: what the questions ask about. Slots: {FULL}/{P} person, {A} the first person (in
# "friend"), {L} town, {O} organisation, {X} object, {D} day, {T} transport. Each relation occurs once
# per story, and its questions share its verb (live, work, go, carry, friend), as SQuAD questions
# share words with the sentence that answers them: reading that sentence answers the question.
FACT_TEMPLATES = {
    "home": ("{FULL} lives in {L}.", "{FULL} lives in a small house in {L}.", "{FULL} lives in an old flat in {L}."),
    "friend": ("{FULL} is a friend of {A}.", "{FULL} is an old friend of {A}.", "{A} met a friend, {FULL}."),
    "work": ("{P} works at {O}.", "{P} works as a clerk at {O}.", "Every day, {P} works long hours at {O}."),
    "trip": ("On {D}, {P} went to {L}.", "On {D}, {P} went to {L} by {T}.", "{P} went to {L} by {T} on {D}."),
    "object": ("{P} carried a {X}.", "{P} carried a {X} in a bag.", "{P} carried the {X} home."),
}
QUESTION_TEMPLATES = {
    # (relation, asks for): templates; {P} the fact's person (first name), {A} the first person,
    # {L}/{O}/{X} the fact's value.
    ("home", "value"): ("Where does {P} live?", "In which town does {P} live?"),
    ("home", "person"): ("Who lives in {L}?",),
    ("friend", "person"): ("Who is a friend of {A}?",),
    ("work", "value"): ("Where does {P} work?", "Which company does {P} work for?"),
    ("work", "person"): ("Who works at {O}?",),
    ("trip", "value"): ("Where did {P} go?", "Which town did {P} go to?"),
    ("trip", "person"): ("Who went to {L}?",),
    ("trip", "day"): ("When did {P} go to {L}?", "On which day did {P} go to {L}?"),
    ("object", "value"): ("What did {P} carry?", "Which object did {P} carry?"),
    ("object", "person"): ("Who carried the {X}?",),
}
VALUE_SLOT = {"home": "L", "work": "O", "trip": "L", "object": "X"}

_SLOT = re.compile(r"\{(\w+)\}")
_TOKEN = re.compile(r"\w+(?:['’.\-&]\w+)*|[^\w\s]")
_NO_SPACE_BEFORE = set(".,?!;:")


# --- data structures ----------------------------------------------------------------------------------

@dataclasses.dataclass
class Sentence:
    text: str
    words: list[str]
    tags: list[str]  # IOB2, one per word
    offsets: list[tuple[int, int]]  # character span of each word in `text`


@dataclasses.dataclass
class Question:
    qid: str
    question: str
    answers: list[dict]  # [{"text", "answer_start"}], the first is the one in the fact's sentence
    kind: str  # "home/value", "trip/person", ...


@dataclasses.dataclass
class Story:
    sid: str
    label: str
    sentences: list[Sentence]
    questions: list[Question]

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.sentences)


@dataclasses.dataclass(frozen=True)
class WorldConfig:
    """Sizes of the world. Pretraining reads the pretrain and train stories; dev stories are only
    used for evaluation (never seen in pretraining or fine-tuning)."""

    seed: int = 0
    pretrain_stories: int = 3000  # extra unlabeled stories for the pretraining corpus
    train_stories: int = 1200
    dev_stories: int = 250
    questions_per_story: int = 3  # QA questions kept per story (of the 10 each story allows)
    distractor_prob: float = 0.0  # a story gets one cue sentence of another topic
    # multi-label and regression examples (of topic sentences): this many per story of the split
    topic_examples_per_story: float = 1.0


@dataclasses.dataclass
class World:
    config: WorldConfig
    pretrain: list[Story]
    train: list[Story]
    dev: list[Story]

    def write(self, out_dir: str) -> dict[str, str]:
        """Writes the corpus and task files; returns {name: path}."""
        os.makedirs(out_dir, exist_ok=True)
        paths = {name: os.path.join(out_dir, file) for name, file in (
            ("corpus", "corpus.txt"), ("corpus_dev", "corpus_dev.txt"), ("classify_train", "classify_train.tsv"),
            ("classify_dev", "classify_dev.tsv"), ("ner_train", "ner_train.conll"),
            ("ner_dev", "ner_dev.conll"), ("qa_train", "qa_train.json"), ("qa_dev", "qa_dev.json"),
            ("multilabel_train", "multilabel_train.tsv"), ("multilabel_dev", "multilabel_dev.tsv"),
            ("regression_train", "regression_train.tsv"), ("regression_dev", "regression_dev.tsv"))}
        _write(paths["corpus"], corpus_text(self.pretrain + self.train))
        _write(paths["corpus_dev"], corpus_text(self.dev))
        _write(paths["classify_train"], classify_tsv(self.train))
        _write(paths["classify_dev"], classify_tsv(self.dev))
        _write(paths["ner_train"], ner_conll(self.train))
        _write(paths["ner_dev"], ner_conll(self.dev))
        _write(paths["qa_train"], squad_json(self.train, "quickstart-train"))
        _write(paths["qa_dev"], squad_json(self.dev, "quickstart-dev"))
        c = self.config
        for split, stories in (("train", self.train), ("dev", self.dev)):
            n = round(len(stories) * c.topic_examples_per_story)
            _write(paths[f"multilabel_{split}"], topic_mixes(n, c.seed, split))
            _write(paths[f"regression_{split}"], topic_scores(n, c.seed, split))
        return paths


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


# --- rendering: template + slot values -> words, tags, offsets ----------------------------------------

def render(template: str, values: dict[str, tuple[str, str | None]]) -> tuple[Sentence, dict[str, tuple[int, int]]]:
    """A sentence from a template and {slot: (text, entity type or None)}. Returns the sentence and
    the character span of each slot's (first) filler in the sentence text."""
    pieces: list[tuple[str, str | None, str | None]] = []  # (word, entity type, slot)
    for i, part in enumerate(_SLOT.split(template)):
        if i % 2:  # a slot
            text, etype = values[part]
            pieces += [(w, etype, part) for w in _TOKEN.findall(text)]
        else:
            pieces += [(w, None, None) for w in _TOKEN.findall(part)]
    for i in range(1, len(pieces)):  # "a antique map" -> "an antique map"
        if pieces[i - 1][0] in ("a", "A") and pieces[i - 1][2] is None and pieces[i][0][0] in "aeiouAEIOU":
            pieces[i - 1] = (pieces[i - 1][0] + "n",) + pieces[i - 1][1:]
    words, tags, offsets, slots = [], [], [], {}
    text = ""
    prev_slot = None
    for word, etype, slot in pieces:
        if text and word not in _NO_SPACE_BEFORE:
            text += " "
        start = len(text)
        text += word
        words.append(word)
        offsets.append((start, len(text)))
        if etype is None:
            tags.append("O")
        else:
            tags.append(("I-" if slot == prev_slot and tags and tags[-1] != "O" else "B-") + etype)
        if slot is not None:
            first, _ = slots.get(slot, (start, None))
            if slot not in slots or slot == prev_slot:
                slots[slot] = (first, len(text))
        prev_slot = slot
    return Sentence(text, words, tags, offsets), slots


# --- stories -------------------------------------------------------------------------------------------

def _person(rng: random.Random, used_first: set) -> dict:
    first = rng.choice([n for n in FIRST_NAMES if n not in used_first])
    used_first.add(first)
    return {"first": first, "full": f"{first} {rng.choice(SURNAMES)}"}


def make_story(rng: random.Random, sid: str, config: "WorldConfig") -> Story:
    """One story about two people: the first lives somewhere, the second is introduced as a friend;
    a job, a trip and an object each belong to one of them; two topic sentences (plus, with
    `distractor_prob`, one of another topic) mention either."""
    label = rng.choice(LABELS)
    used_first: set = set()
    people = [_person(rng, used_first) for _ in range(2)]
    home, destination = rng.sample(PLACES, 2)
    first = {"FULL": (people[0]["full"], "PER")}
    # (template, relation, {slot: (text, entity type)}, {person slot: person index}, fact's person)
    plan = [(rng.choice(FACT_TEMPLATES["home"]), "home", {**first, "L": (home, "LOC")}, {"FULL": 0}, 0),
            (rng.choice(FACT_TEMPLATES["friend"]), "friend",
             {"FULL": (people[1]["full"], "PER"), "A": (people[0]["first"], "PER")}, {"FULL": 1, "A": 0}, 1)]
    facts = []
    for relation, values in (("work", {"O": (rng.choice(ORGANISATIONS), "ORG")}),
                             ("trip", {"L": (destination, "LOC"), "D": (rng.choice(DAYS), None),
                                       "T": (rng.choice(TRANSPORT), None)}),
                             ("object", {"X": (rng.choice(OBJECTS), "OBJ")})):
        who = rng.randrange(2)
        facts.append((rng.choice(FACT_TEMPLATES[relation]), relation,
                      {**values, "P": (people[who]["first"], "PER")}, {"P": who}, who))
    rng.shuffle(facts)
    plan += facts
    cue_topics = [label, label]
    if rng.random() < config.distractor_prob:
        cue_topics.append(rng.choice([t for t in LABELS if t != label]))
    cue_templates = {t: rng.sample(TOPIC_TEMPLATES[t], cue_topics.count(t)) for t in sorted(set(cue_topics))}
    for topic in cue_topics:
        who = rng.randrange(2)
        position = rng.randint(2, len(plan))  # after both people are introduced
        plan.insert(position, (cue_templates[topic].pop(), None, {"P": (people[who]["first"], "PER")}, {"P": who},
                               who))

    sentences, facts, mentions = [], [], {0: [], 1: []}
    offset = 0
    for template, relation, values, owners, who in plan:
        sentence, slots = render(template, values)
        for slot, person in owners.items():
            s, e = slots[slot]
            mentions[person].append((sentence.text[s:e], offset + s))
        if relation is not None:
            facts.append({"relation": relation, "who": who, "values": values,
                          "spans": {k: (offset + s, offset + e) for k, (s, e) in slots.items()}})
        sentences.append(sentence)
        offset += len(sentence.text) + 1
    story = Story(sid, label, sentences, [])
    story.questions = _questions(rng, story, people, facts, mentions)
    return story


def _questions(rng: random.Random, story: Story, people: list[dict], facts: list[dict],
               mentions: dict[int, list]) -> list[Question]:
    """Every question the story answers: per fact, its value ("Where does Anna live?"), its person
    ("Who lives in Foxley?") and, for the trip, its day. A person's answers are every form of the
    name in the story (full and first name); the first is the one in the fact's sentence."""
    context = story.text
    out = []
    for fact in facts:
        relation, who, values, spans = fact["relation"], fact["who"], fact["values"], fact["spans"]
        fills = {"P": people[who]["first"], "A": people[0]["first"],
                 **{k: v[0] for k, v in values.items() if k in ("L", "O", "X")}}
        asks = [a for r, a in QUESTION_TEMPLATES if r == relation]
        for ask in asks:
            if ask == "person":
                s, e = spans["FULL" if "FULL" in spans else "P"]
                answers = [{"text": context[s:e], "answer_start": s}]
                seen = {context[s:e]}
                for text, start in mentions[who]:  # the other forms of the name also count
                    if text not in seen:
                        seen.add(text)
                        answers.append({"text": text, "answer_start": start})
            else:
                s, e = spans["D" if ask == "day" else VALUE_SLOT[relation]]
                answers = [{"text": context[s:e], "answer_start": s}]
            question = rng.choice(QUESTION_TEMPLATES[(relation, ask)]).format(**fills)
            out.append(Question("", question, answers, f"{relation}/{ask}"))
    for i, q in enumerate(out):
        q.qid = f"{story.sid}-q{i}"
    return out


def generate_stories(n: int, seed: int, split: str, config: WorldConfig | None = None, bar=None) -> list[Story]:
    """`n` stories of one split ("pretrain", "train", "dev"): each split has its own random stream."""
    config = config or WorldConfig()
    rng = random.Random(f"bertkit-quickstart-{seed}-{split}")
    stories = []
    for i in range(n):
        stories.append(make_story(rng, f"{split}-{i:05d}", config))
        if bar is not None:
            bar.update(1)
    return stories


def generate_world(config: WorldConfig | None = None, progress: bool = False) -> World:
    config = config or WorldConfig()
    from tqdm.auto import tqdm

    with tqdm(total=config.pretrain_stories + config.train_stories + config.dev_stories, desc="world",
              unit="story", disable=not progress) as bar:
        world = World(config, generate_stories(config.pretrain_stories, config.seed, "pretrain", config, bar),
                      generate_stories(config.train_stories, config.seed, "train", config, bar),
                      generate_stories(config.dev_stories, config.seed, "dev", config, bar))
    # Keep a fixed number of questions per story (a seeded choice), so the QA set size is predictable.
    rng = random.Random(f"bertkit-quickstart-{config.seed}-questions")
    for story in world.train + world.dev:
        if len(story.questions) > config.questions_per_story:
            story.questions = sorted(rng.sample(story.questions, config.questions_per_story),
                                     key=lambda q: int(q.qid.rsplit("q", 1)[1]))
    return world


# --- file formats --------------------------------------------------------------------------------------

def corpus_text(stories: list[Story]) -> str:
    """BERT pretraining format: one sentence per line, a blank line between documents (stories)."""
    return "\n".join("\n".join(s.text for s in story.sentences) + "\n" for story in stories)


def classify_tsv(stories: list[Story]) -> str:
    """`text<TAB>label` per story, no header row."""
    return "".join(f"{story.text}\t{story.label}\n" for story in stories)


def ner_conll(stories: list[Story]) -> str:
    """CoNLL: `word TAG` per line, a blank line after each sentence."""
    blocks = []
    for story in stories:
        for sentence in story.sentences:
            blocks.append("".join(f"{w} {t}\n" for w, t in zip(sentence.words, sentence.tags)))
    return "\n".join(blocks)


def squad_json(stories: list[Story], title: str) -> str:
    data = [{"title": story.sid, "paragraphs": [{
        "context": story.text,
        "qas": [{"id": q.qid, "question": q.question, "answers": q.answers} for q in story.questions]}]}
        for story in stories]
    return json.dumps({"version": "1.1", "data": data, "title": title}, ensure_ascii=False, indent=None) + "\n"


def _cue(rng: random.Random, topic: str) -> str:
    """One topic sentence of `topic` about somebody."""
    return rng.choice(TOPIC_TEMPLATES[topic]).format(P=rng.choice(FIRST_NAMES))


def topic_mixes(n: int, seed: int, split: str) -> str:
    """Multi-label TSV, `text<TAB>topic,topic` per line: 2-5 topic sentences of one to three topics
    (one or two sentences each), shuffled; the labels are the topics present, sorted."""
    rng = random.Random(f"bertkit-quickstart-{seed}-{split}-multilabel")
    lines = []
    for _ in range(n):
        topics = rng.sample(LABELS, rng.choice((1, 1, 2, 2, 3)))
        sentences = [_cue(rng, t) for t in topics for _ in range(rng.choice((1, 2)) if len(topics) < 3 else 1)]
        if len(sentences) == 1:
            sentences.append(_cue(rng, topics[0]))
        rng.shuffle(sentences)
        lines.append(f"{' '.join(sentences)}\t{','.join(sorted(topics))}\n")
    return "".join(lines)


SCORED_TOPIC = "sports"  # the regression target: how much of a text is about it


def topic_scores(n: int, seed: int, split: str) -> str:
    """Regression TSV, `text<TAB>score` per line: 2-4 topic sentences, of which k are about sports
    (the others on other topics); the score is 5 k / sentences, rounded to 2 decimals (0-5, the
    scale of STS-B)."""
    rng = random.Random(f"bertkit-quickstart-{seed}-{split}-regression")
    others = [t for t in LABELS if t != SCORED_TOPIC]
    lines = []
    for _ in range(n):
        total = rng.randint(2, 4)
        k = rng.randint(0, total)
        sentences = [_cue(rng, SCORED_TOPIC) for _ in range(k)] + [_cue(rng, rng.choice(others)) for _ in range(total - k)]
        rng.shuffle(sentences)
        lines.append(f"{' '.join(sentences)}\t{5 * k / total:.2f}\n")
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python -m bertkit.quickstart.world --out DIR`: writes the world's corpus and task files."""
    import argparse

    defaults = WorldConfig()
    p = argparse.ArgumentParser(prog="python -m bertkit.quickstart.world",
                                description="Write the quickstart's synthetic world: corpus.txt, corpus_dev.txt, "
                                            "classify_*.tsv, ner_*.conll, qa_*.json, multilabel_*.tsv, "
                                            "regression_*.tsv.")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--pretrain-stories", type=int, default=defaults.pretrain_stories)
    p.add_argument("--train-stories", type=int, default=defaults.train_stories)
    p.add_argument("--dev-stories", type=int, default=defaults.dev_stories)
    p.add_argument("--questions-per-story", type=int, default=defaults.questions_per_story)
    args = p.parse_args(argv)
    world = generate_world(WorldConfig(seed=args.seed, pretrain_stories=args.pretrain_stories,
                                       train_stories=args.train_stories, dev_stories=args.dev_stories,
                                       questions_per_story=args.questions_per_story))
    for name, path in world.write(args.out).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
