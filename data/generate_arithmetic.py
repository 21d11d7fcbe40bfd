"""Generate data/arithmetic.jsonl: grade-school arithmetic word problems in GSM8K's shape.

Each row is {"question": str, "answer": "<worked steps>\\n#### <number>"}. Nine in ten take one
step with small numbers (so a 135M-parameter model can learn them on a CPU), one in ten takes two.
Deterministic: the same seed always writes the same file. Run: python data/generate_arithmetic.py
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

NAMES = ["Sam", "Mia", "Leo", "Ava", "Noah", "Zoe", "Omar", "Lina", "Ben", "Iris", "Tom", "Maya"]
ITEMS = ["apples", "marbles", "stickers", "books", "pencils", "cookies", "shells", "cards",
         "stamps", "coins", "eggs", "balloons"]


def _add(r: random.Random, who: str, item: str) -> tuple[str, str, int]:
    a, b = r.randint(2, 20), r.randint(2, 20)
    q = f"{who} has {a} {item}. {who} gets {b} more {item}. How many {item} does {who} have now?"
    return q, f"{who} has {a} + {b} = {a + b} {item}.", a + b


def _sub(r: random.Random, who: str, item: str) -> tuple[str, str, int]:
    a = r.randint(8, 30)
    b = r.randint(1, a - 1)
    q = f"{who} has {a} {item} and gives away {b}. How many {item} does {who} have left?"
    return q, f"{who} has {a} - {b} = {a - b} {item} left.", a - b


def _mul(r: random.Random, who: str, item: str) -> tuple[str, str, int]:
    a, b = r.randint(2, 9), r.randint(2, 9)
    q = f"{who} has {a} bags with {b} {item} in each bag. How many {item} does {who} have?"
    return q, f"{a} bags x {b} {item} = {a * b} {item}.", a * b


def _div(r: random.Random, who: str, item: str) -> tuple[str, str, int]:
    each, kids = r.randint(2, 9), r.randint(2, 6)
    total = each * kids
    q = f"{who} shares {total} {item} equally among {kids} friends. How many {item} does each " \
        f"friend get?"
    return q, f"{total} / {kids} = {each} {item} each.", each


def _two_step(r: random.Random, who: str, item: str) -> tuple[str, str, int]:
    a, b = r.randint(5, 20), r.randint(2, 10)
    c = r.randint(1, a + b - 1)
    q = (f"{who} has {a} {item}, buys {b} more, then gives {c} to a friend. "
         f"How many {item} does {who} have now?")
    steps = f"After buying, {a} + {b} = {a + b}. After giving, {a + b} - {c} = {a + b - c}."
    return q, steps, a + b - c


KINDS = [(_add, 3), (_sub, 3), (_mul, 2), (_div, 1), (_two_step, 1)]


def generate(n: int, seed: int) -> list[dict[str, str]]:
    r = random.Random(seed)
    makers = [k for k, weight in KINDS for _ in range(weight)]
    rows = []
    for _ in range(n):
        question, steps, result = r.choice(makers)(r, r.choice(NAMES), r.choice(ITEMS))
        rows.append({"question": question, "answer": f"{steps}\n#### {result}"})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("arithmetic.jsonl"))
    args = parser.parse_args()
    with args.out.open("w", encoding="utf-8") as f:
        for row in generate(args.rows, args.seed):
            f.write(json.dumps(row) + "\n")
    print(f"wrote {args.rows} rows to {args.out}")


if __name__ == "__main__":
    main()
