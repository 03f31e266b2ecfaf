"""How many multiple-choice questions take each path of :func:`scireflect.verifiers.answer.options.mc_path`, and why.

    python benchmarks/mc_paths.py /work/shared/data/mmlu_stem/*.jsonl /work/shared/data/jeebench/*.jsonl
    python benchmarks/mc_paths.py FILE --show k_sample:refers --n 30     # eyeball 30 rows of one path:why

Per file: ``options_free`` and ``k_sample`` counts, the ``k_sample`` ones split by the first rule that
sent them there (``multiple`` correct letters, ``no_stem`` the options could not be split off,
``refers`` the stem refers to its options, ``not_values`` an option is not a value, ``equal_options``
two options are equal). Rows that are not multiple choice are counted as ``none``. Issue 23, item 4.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
from pathlib import Path

from scireflect.verifiers.answer.options import (
    is_multiple_choice,
    is_value_option,
    mc_path,
    options_free_stem,
    question_options,
    refers_to_options,
)


def why(question: dict) -> str:
    """``path:reason`` of one row (``none`` for a row that is not multiple choice)."""
    path = mc_path(question)
    if path != "k_sample":
        return path or "none"
    stem, options = options_free_stem(question), question_options(question) or []
    expressions = str(question.get("subject") or "").lower() != "chemistry"
    if str(question.get("question_type")) == "MCQ(multiple)" or len(str(question.get("answer") or "")) > 1:
        return "k_sample:multiple"
    if stem is None or not options:
        return "k_sample:no_stem"
    if refers_to_options(stem):
        return "k_sample:refers"
    if not all(is_value_option(o, expressions=expressions) for o in options):
        return "k_sample:not_values"
    return "k_sample:equal_options"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--show", help="print rows of this path:reason (e.g. options_free, k_sample:refers)")
    parser.add_argument("--n", type=int, default=30, help="how many rows --show prints (a fixed random sample)")
    args = parser.parse_args()
    for file in args.files:
        rows = [json.loads(line) for line in file.open() if line.strip()]
        rows = [r for r in rows if is_multiple_choice(r)]
        by = collections.defaultdict(list)
        for row in rows:
            by[why(row)].append(row)
        paths = collections.Counter(key.split(":")[0] for key in by for _ in by[key])
        reasons = ", ".join(f"{key.partition(':')[2]} {len(v)}" for key, v in sorted(by.items()) if ":" in key)
        print(f"{file.name}: {len(rows)} multiple-choice rows: options_free {paths['options_free']}, "
              f"k_sample {paths['k_sample']} ({reasons})")
        if args.show and by.get(args.show):
            for row in random.Random(0).sample(by[args.show], min(args.n, len(by[args.show]))):
                stem = options_free_stem(row) or row["question"]
                print(f"  {row['id']}: ...{stem[-140:]!r} {question_options(row)} answer {row['answer']}")


if __name__ == "__main__":
    main()
