r"""Answer checks: compare an extracted final answer with a reference answer, in-process.

Pure functions on strings, one job per module: :mod:`.normalize` (string forms), :mod:`.numbers`
(plain numbers), :mod:`.latex` (LaTeX to sympy, the grammar parser only), :mod:`.select` (which
check), :mod:`.tolerance` (:class:`NumericTolerance`), :mod:`.numeric` (numbers and units),
:mod:`.choice` (multiple choice), :mod:`.structured` (booleans, lists), :mod:`.symbolic`
(expressions, equations, sets, intervals), :mod:`.compare` (one extracted answer against the reference,
under one :class:`VerifierConfig`), :mod:`.consistency` and :mod:`.step_gate` (the checks that read the
whole response) and :mod:`.verify` (the entry point, :func:`verify_answer`). Model text is never evaluated as code. These functions do NOT protect
against pathological input (``9^{9^{9^{9}}}``): run them through
:class:`scireflect.verifiers.workers.SandboxedAnswerVerifier`. The rules, with their reasons and
sources, are in ``docs/verifiers.md``.
"""

from .choice import check_choice
from .common import MAX_ANSWER_CHARS
from .normalize import normalize_latex
from .numbers import ParsedNumber, parse_number
from .numeric import check_numeric
from .select import select_check
from .structured import check_boolean, check_list
from .symbolic import check_symbolic
from .tolerance import DEFAULT_REL_TOL, SCIBENCH_REL_TOL, SYMBOLIC_REL_TOL, NumericTolerance
from .compare import VerifierConfig, verify_extraction
from .verify import precheck, verify_answer

__all__ = [
    "DEFAULT_REL_TOL",
    "SCIBENCH_REL_TOL",
    "SYMBOLIC_REL_TOL",
    "MAX_ANSWER_CHARS",
    "NumericTolerance",
    "ParsedNumber",
    "VerifierConfig",
    "parse_number",
    "normalize_latex",
    "precheck",
    "select_check",
    "check_numeric",
    "check_choice",
    "check_boolean",
    "check_list",
    "check_symbolic",
    "verify_answer",
    "verify_extraction",
]
