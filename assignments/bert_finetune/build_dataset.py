"""Builds data/train.tsv and data/test.tsv: short English review sentences with binary sentiment.

Every sentence, phrase and template in this file was written for this course by its authors and
is dedicated to the public domain (CC0 1.0); see DATA_LICENSE.md. The output is deterministic
(fixed seed), so running this script again reproduces the shipped files byte for byte:

    python assignments/bert_finetune/build_dataset.py

The hidden test split uses opinion words and whole sentences that never occur in the training
split, so a model must generalise from what the pretrained encoder knows about language rather
than memorise the training vocabulary.
"""

import random
from pathlib import Path

HERE = Path(__file__).resolve().parent

SUBJECTS = {
    "movie": ["the film", "this movie", "the plot", "the acting", "the soundtrack", "the ending",
              "the dialogue", "the cinematography", "the lead actor", "the screenplay", "the pacing",
              "the visual effects work", "the sequel", "the documentary"],
    "product": ["the battery", "this phone", "the headphones", "the blender", "the keyboard",
                "the screen", "the charger", "the vacuum cleaner", "the camera", "the packaging",
                "the laptop", "the coffee maker", "the backpack", "the kettle", "the printer"],
    "restaurant": ["the food", "the service", "the pasta", "the staff", "the dessert", "the soup",
                   "the waiter", "the atmosphere", "the pizza", "the curry"],
    "hotel": ["the room", "the hotel", "the bed", "the breakfast", "the location", "the reception",
              "the pool"],
    "book": ["the book", "the novel", "the story", "the author's writing", "the main character",
             "the translation"],
}

# Opinion phrases: (train pool, test pool). The test pool never appears in training sentences.
POSITIVE = (
    ["great", "excellent", "wonderful", "fantastic", "really good", "a real pleasure",
     "beautifully done", "impressive", "delightful", "worth every penny", "brilliant",
     "better than I expected", "lovely", "top notch", "very enjoyable", "solid and reliable",
     "a joy from start to finish", "charming", "fun", "genuinely moving"],
    ["superb", "outstanding", "marvelous", "terrific", "magnificent", "first rate",
     "a treat", "splendid", "remarkable", "exquisite"],
)
NEGATIVE = (
    ["terrible", "awful", "disappointing", "really bad", "a waste of money", "boring",
     "badly made", "painful to sit through", "poor", "worse than I expected", "cheap and flimsy",
     "a complete mess", "annoying", "dull", "frustrating", "broken after a week",
     "not worth the price", "forgettable", "irritating", "a letdown"],
    ["dreadful", "abysmal", "mediocre at best", "atrocious", "lousy", "pathetic",
     "a disaster", "tedious", "shoddy", "unbearable"],
)

TEMPLATES_POS = [
    "{S} was {P}.", "{S} is {P}.", "I thought {s} was {P}.", "Honestly, {s} was {P}.",
    "{S} was {P}, I would recommend it to anyone.", "At first I had doubts, but {s} was {P}.",
    "My whole family agreed that {s} was {P}.", "{S} turned out to be {P}.",
    "I was pleasantly surprised: {s} was {P}.", "Five stars, {s} is {P}.",
    "We will definitely come back, {s} was {P}.", "{S} was {P} and I would buy it again.",
]
TEMPLATES_NEG = [
    "{S} was {P}.", "{S} is {P}.", "I thought {s} was {P}.", "Honestly, {s} was {P}.",
    "{S} was {P}, I would not recommend it.", "I had high hopes, but {s} was {P}.",
    "My whole family agreed that {s} was {P}.", "{S} turned out to be {P}.",
    "I was disappointed: {s} was {P}.", "One star, {s} is {P}.",
    "We will never come back, {s} was {P}.", "{S} was {P} and I returned it.",
]
# Negated positives read as negative ("not great"), a pattern a bag of words gets wrong.
NEGATED_POS = (["great", "good", "worth it", "fun", "comfortable", "impressive"],
               ["special", "enjoyable", "pleasant", "any good"])
TEMPLATES_NEGATED = ["{S} was not {P}.", "Sadly, {s} was not {P} at all.", "{S} is just not {P}."]

STANDALONE_POS = (
    ["Best purchase I made all year.", "I would happily watch it again tomorrow.",
     "It exceeded every expectation I had.", "Everything worked perfectly out of the box.",
     "The staff went out of their way to help us.", "I laughed and cried, what a ride.",
     "Highly recommended to all my friends.", "It arrived early and works like a charm.",
     "A masterpiece that deserves every award.", "We had a wonderful evening there.",
     "Couldn't put it down until the last page.", "Great value for the price.",
     "This made my mornings so much easier.", "I am thrilled with how it turned out.",
     "The kids loved every minute of it.", "Clean, quiet and very comfortable.",
     "Exactly what I was looking for.", "It still works flawlessly after two years.",
     "The best meal we have had in months.", "A heartwarming story with a clever twist."],
    ["I keep recommending it to everyone I meet.", "Pure joy from the first minute.",
     "It was love at first sight.", "I would give it ten stars if I could.",
     "Simply the finest of its kind.", "We left smiling and already planning our return.",
     "Worth the wait, every single second.", "Our stay was an absolute dream.",
     "It changed how I cook, in the best way.", "An instant classic."],
)
STANDALONE_NEG = (
    ["I want my money back.", "It stopped working after two days.",
     "The worst service I have ever experienced.", "I fell asleep halfway through.",
     "Nothing about it worked as advertised.", "Avoid this place at all costs.",
     "The screen cracked the first time I dropped it.", "A total waste of two hours.",
     "Customer support never answered my emails.", "The room smelled of smoke and mould.",
     "It broke the moment I opened the box.", "I regret buying it.",
     "The food was cold and the portions tiny.", "Predictable from the very first scene.",
     "We waited an hour and nobody came.", "It is noisy, slow and overpriced.",
     "The instructions made no sense at all.", "I could not finish it, it was that bad.",
     "Never again, not even if it were free.", "The battery dies before lunch."],
    ["Save yourself the trouble and skip it.", "I have never been so bored in my life.",
     "It fell apart within a month.", "Rude staff and a filthy bathroom.",
     "Two hours of my life I will never get back.", "Returned it the very next day.",
     "A cheap imitation of the original.", "The plot holes were impossible to ignore.",
     "Everything tasted burnt.", "Do not waste your money on this."],
)


def _fill(template, subject, phrase):
    s = template.format(S=subject[0].upper() + subject[1:], s=subject, P=phrase)
    return s


def build(split_index, rng, n_templated):
    """split_index 0 = train pools, 1 = test pools."""
    subjects = [s for group in SUBJECTS.values() for s in group]
    rows = set()
    for text in STANDALONE_POS[split_index]:
        rows.add((text, 1))
    for text in STANDALONE_NEG[split_index]:
        rows.add((text, 0))
    target = len(rows) + n_templated
    while len(rows) < target:
        label = rng.randrange(2)
        subject = rng.choice(subjects)
        if label == 0 and rng.random() < 0.2:
            text = _fill(rng.choice(TEMPLATES_NEGATED), subject, rng.choice(NEGATED_POS[split_index]))
        elif label == 1:
            text = _fill(rng.choice(TEMPLATES_POS), subject, rng.choice(POSITIVE[split_index]))
        else:
            text = _fill(rng.choice(TEMPLATES_NEG), subject, rng.choice(NEGATIVE[split_index]))
        rows.add((text, label))
    rows = sorted(rows)
    rng.shuffle(rows)
    return rows


def write(path, rows):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("label\ttext\n")
        for text, label in rows:
            assert "\t" not in text and "\n" not in text
            f.write(f"{label}\t{text}\n")


def main(out_dir=HERE / "data"):
    out_dir = Path(out_dir)
    rng = random.Random(20241106)
    train = build(0, rng, 440)
    test = build(1, rng, 180)
    train_texts = {t for t, _ in train}
    test = [(t, y) for t, y in test if t not in train_texts]
    out_dir.mkdir(parents=True, exist_ok=True)
    write(out_dir / "train.tsv", train)
    write(out_dir / "test.tsv", test)
    for name, rows in (("train", train), ("test", test)):
        pos = sum(y for _, y in rows)
        print(f"{name}: {len(rows)} sentences, {pos} positive, {len(rows) - pos} negative")


if __name__ == "__main__":
    main()
