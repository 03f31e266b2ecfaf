"""The public entry points' docstring examples run, so they cannot rot.

``verify_answer``, ``build_annotation_graph`` and ``Budget`` show how they are used in an
``Examples:`` section (as Math-Verify's entry points do); each example is run here with doctest,
with its module's other examples.
"""

from __future__ import annotations

import doctest

import pytest

from scireflect.graphs import annotation, budget
from scireflect.graphs.annotation import build_annotation_graph
from scireflect.graphs.budget import Budget
from scireflect.verifiers.answer import verify
from scireflect.verifiers.answer.verify import verify_answer

ENTRY_POINTS = [(verify, verify_answer), (annotation, build_annotation_graph), (budget, Budget)]


@pytest.mark.parametrize(("module", "entry_point"), ENTRY_POINTS, ids=lambda x: getattr(x, "__name__", ""))
def test_the_docstring_examples_run(module, entry_point):
    assert "Examples:\n" in entry_point.__doc__ and ">>> " in entry_point.__doc__.split("Examples:\n", 1)[1]
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE, report=True)
    assert result.attempted > 0 and result.failed == 0, f"{result.failed} of {result.attempted} examples of {module.__name__} failed"
