"""Lean source handling without Lean: proof extraction, comment stripping, statement headers, static checks.

Nothing here runs or evaluates model text; it is read as text only.

* :func:`extract_lean_block`: the last complete fenced Lean block of a model response
  (```` ```lean ```` or ```` ```lean4 ````).
* :func:`build_submission`: the Lean code to check for one question: imports stripped (and checked
  against the question's header), a bare tactic proof completed with the given statement.
* :func:`strip_comments`: Lean code with ``--`` and nested ``/- -/`` comments and string literals
  blanked (same length and line structure, so positions keep their meaning).
* :func:`statement_head` / :func:`submitted_head`: the theorem header (``theorem name binders :
  type``, without ``:=``) of the given statement and of the submitted code, whitespace-normalised.
* :func:`static_issues`: integrity problems visible in the text: ``sorry``/``admit``,
  ``native_decide`` (and ``decide +native``), ``implemented_by``/``extern``, ``debug.skipKernelTC``,
  ``axiom`` declarations, metaprogramming and syntax-extension commands (``#eval``, ``run_cmd``,
  ``elab``, ``macro``, ``syntax``, ``notation``, ...), ``unsafe``, imports outside the header.

A regex for ``sorry`` is the only integrity check most public checkers make (LeanDojo's
``check_proof`` looks for the "declaration uses 'sorry'" warning); here these text checks are the
first layer only: with Lean, :mod:`scireflect.verifiers.lean.judge` also compares the elaborated
statement and audits the axioms.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..base import UNVERIFIED  # a reason code the loop ends on (graphs/budget.py), defined once with the others

# Reason codes of the Lean checker (Verdict.reason).
PROOF_CHECKED = "proof_checked"
NO_PROOF = "no_proof"
LEAN_ERROR = "lean_error"
SORRY = "sorry"
STATEMENT_CHANGED = "statement_changed"
DISALLOWED_AXIOM = "disallowed_axiom"
NATIVE_DECIDE = "native_decide"
UNSAFE_CONSTRUCT = "unsafe_construct"
BAD_IMPORT = "bad_import"
LEAN_REASONS = (PROOF_CHECKED, NO_PROOF, LEAN_ERROR, SORRY, STATEMENT_CHANGED, DISALLOWED_AXIOM, NATIVE_DECIDE,
                UNSAFE_CONSTRUCT, BAD_IMPORT, UNVERIFIED)

_FENCE = re.compile(r"```[ \t]*(?:lean4?|Lean4?)[ \t]*\n(.*?)```", re.DOTALL)
_IDENT_CHAR = r"[\w'!?.₀-₉]"


def extract_lean_block(response: str) -> str | None:
    """The content of the last complete ```` ```lean ... ``` ```` block of ``response``, or ``None``.

    An unterminated last block (a truncated response) does not count.
    """
    blocks = _FENCE.findall(response or "")
    if not blocks:
        return None
    code = blocks[-1].strip("\n")
    return code if code.strip() else None


def strip_comments(code: str) -> str:
    """``code`` with comments and string literals replaced by spaces (newlines kept).

    Handles ``-- line`` comments, nested ``/- ... -/`` block comments (doc comments included) and
    ``"..."`` strings with backslash escapes. Character literals are left alone (``'`` also occurs
    in identifiers such as ``h'``).
    """
    out = list(code)
    i, n = 0, len(code)

    def blank(start: int, end: int) -> None:
        for k in range(start, min(end, n)):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        if code.startswith("--", i):
            end = code.find("\n", i)
            end = n if end < 0 else end
            blank(i, end)
            i = end
        elif code.startswith("/-", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if code.startswith("/-", j):
                    depth, j = depth + 1, j + 2
                elif code.startswith("-/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif code[i] == '"':
            j = i + 1
            while j < n and code[j] != '"':
                j += 2 if code[j] == "\\" else 1
            blank(i, j + 1)
            i = j + 1
        else:
            i += 1
    return "".join(out)


def normalize_ws(text: str) -> str:
    """Whitespace runs collapsed to one space, ends stripped."""
    return re.sub(r"\s+", " ", text).strip()


def statement_head(statement: str) -> str:
    """The header of a given statement: the text before its final ``:= by sorry`` / ``:= sorry``.

    Raises:
        ValueError: the statement does not end in ``:= by sorry`` or ``:= sorry``.
    """
    text = strip_comments(statement).rstrip()
    match = re.search(r":=\s*(?:by\s+)?sorry\s*$", text)
    if not match:
        raise ValueError("the formal statement must end with ':= by sorry' (or ':= sorry')")
    return statement[: match.start()].rstrip()


def theorem_name(statement: str) -> str:
    """The declared name of a statement (``theorem NAME ...``).

    Raises:
        ValueError: no ``theorem``/``lemma`` declaration found.
    """
    match = re.search(rf"\b(?:theorem|lemma)\s+({_IDENT_CHAR}+)", strip_comments(statement))
    if not match:
        raise ValueError("no 'theorem NAME' declaration in the formal statement")
    return match.group(1)


def _decl_start(code_nc: str, name: str) -> re.Match[str] | None:
    return re.search(rf"(?<![\w'.])(?:theorem|lemma)\s+{re.escape(name)}(?!{_IDENT_CHAR})", code_nc)


def submitted_head(code: str, name: str) -> str | None:
    """The header of the declaration of ``name`` in ``code`` (``lemma`` read as ``theorem``), or ``None``.

    The header runs from the keyword to the first ``:=`` outside brackets.
    """
    code_nc = strip_comments(code)
    match = _decl_start(code_nc, name)
    if not match:
        return None
    depth = 0
    for k in range(match.start(), len(code_nc) - 1):
        ch = code_nc[k]
        if ch in "([{⟨":
            depth += 1
        elif ch in ")]}⟩":
            depth -= 1
        elif depth == 0 and code_nc.startswith(":=", k):
            head = code_nc[match.start():k]
            return re.sub(r"^lemma\b", "theorem", head)
    return None


def heads_match(code: str, statement: str, name: str) -> bool:
    """Whether the submitted header of ``name`` equals the given statement's, after normalising whitespace."""
    head = submitted_head(code, name)
    if head is None:
        return False
    return normalize_ws(head) == normalize_ws(strip_comments(statement_head(statement)))


@dataclass(frozen=True)
class Submission:
    """The Lean code to check for one response.

    Attributes:
        code: the code sent to Lean after the header (imports removed).
        name: the theorem name that must be proved.
        method: ``lean_block`` (a full declaration) or ``lean_block+statement`` (a bare proof,
            completed with the given statement).
        imports: the ``import`` lines removed from the block.
        raw: the block as the model wrote it.
    """

    code: str
    name: str
    method: str
    imports: tuple[str, ...] = ()
    raw: str = ""


def header_imports(header: str) -> set[str]:
    """Module names imported by a header (``import Mathlib`` -> ``{"Mathlib"}``)."""
    names: set[str] = set()
    for line in strip_comments(header).splitlines():
        parts = line.split()
        if parts and parts[0] == "import":
            names.update(parts[1:])
    return names


def build_submission(block: str, question: Mapping[str, Any]) -> Submission:
    """Turn an extracted block into the code to check against ``question['statement']``.

    Leading ``import`` lines are removed (Lean only accepts them at the top of a file; the header
    is loaded once per REPL process). A block with no ``theorem``/``lemma`` declaration is read as
    the proof of the given statement and completed with its header.

    Raises:
        ValueError: the question's statement is malformed (see :func:`statement_head`).
    """
    statement = str(question["statement"])
    name = str(question.get("name") or "") or theorem_name(statement)
    lines = block.splitlines()
    imports: list[str] = []
    keep: list[str] = []
    nc_lines = strip_comments(block).splitlines()
    in_prologue = True
    for line, nc in zip(lines, nc_lines, strict=True):
        if in_prologue and nc.strip().startswith("import "):
            imports.extend(nc.split()[1:])
            continue
        if nc.strip():
            in_prologue = False
        keep.append(line)
    code = "\n".join(keep).strip("\n")
    method = "lean_block"
    if not re.search(r"(?<![\w'.])(?:theorem|lemma|example)\s", strip_comments(code)):
        head = statement_head(statement)
        body = code.strip()
        if body.startswith(":="):
            code = f"{head} {body}"
        elif body.startswith("by"):
            code = f"{head} := {body}"
        else:
            code = f"{head} := by\n{textwrap.indent(body, '  ')}"
        method = "lean_block+statement"
    return Submission(code=code, name=name, method=method, imports=tuple(imports), raw=block)


@dataclass(frozen=True)
class Issue:
    """One integrity problem: a reason code, a message for the Critic, the 1-based line (or None)."""

    reason: str
    message: str
    line: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "message": self.message, "line": self.line, **dict(self.details)}


_TOKEN_RULES: list[tuple[str, str, str]] = [
    # (regex on comment-free code, reason, message)
    (rf"(?<!{_IDENT_CHAR})(?:sorry|admit)(?!{_IDENT_CHAR})", SORRY, "the proof uses `sorry`/`admit`"),
    (rf"(?<!{_IDENT_CHAR})native_decide(?!{_IDENT_CHAR})|\bdecide\s*\+\s*native\b|\bofReduce(?:Bool|Nat)\b", NATIVE_DECIDE,
     "the proof uses `native_decide` (trusts compiled code: axiom Lean.ofReduceBool)"),
    (r"\bimplemented_by\b|@\[\s*extern\b|\bextern\s+\"", UNSAFE_CONSTRUCT,
     "the proof uses `implemented_by`/`extern` (replaces checked code by unchecked code)"),
    (r"\bdebug\.skipKernelTC\b|\bdebug\.byAsSorry\b", UNSAFE_CONSTRUCT, "the proof disables kernel checking"),
]
_COMMAND_RULE = re.compile(
    r"^[ \t]*(?:@\[[^\]]*\][ \t]*)?(?:(?:private|protected|noncomputable|partial|local|scoped|nonrec)[ \t]+)*"
    r"(axiom|unsafe|notation|infixl?|infixr|prefix|postfix|macro|macro_rules|syntax|elab|elab_rules|declare_syntax_cat|"
    r"initialize|builtin_initialize|run_cmd|run_tac|run_elab|run_meta|#eval|#exit|import)(?![\w'])",
    re.MULTILINE,
)


def static_issues(submission: Submission, question: Mapping[str, Any], *, allow_native_decide: bool = False) -> list[Issue]:
    """Integrity problems visible in the text of a submission (no Lean needed); ``[]`` when none.

    Checks: ``sorry``/``admit``; ``native_decide``/``decide +native`` (unless allowed);
    ``implemented_by``/``extern``; ``debug.skipKernelTC``; ``axiom``, ``unsafe``, syntax-extension and
    metaprogramming commands; imports not in the question's header; a declaration of the theorem
    under another name or with another header.
    """
    code_nc = strip_comments(submission.code)
    issues: list[Issue] = []

    def line_of(pos: int) -> int:
        return code_nc.count("\n", 0, pos) + 1

    for pattern, reason, message in _TOKEN_RULES:
        if reason == NATIVE_DECIDE and allow_native_decide:
            continue
        match = re.search(pattern, code_nc)
        if match:
            issues.append(Issue(reason, f"{message} (line {line_of(match.start())})", line_of(match.start())))
    for match in _COMMAND_RULE.finditer(code_nc):
        word = match.group(1)
        reason = BAD_IMPORT if word == "import" else UNSAFE_CONSTRUCT
        text = ("the proof declares an axiom" if word == "axiom" else
                f"the proof uses the command `{word}` (not allowed in a proof submission)")
        issues.append(Issue(reason, f"{text} (line {line_of(match.start(1))})", line_of(match.start(1)), {"command": word}))
    allowed = header_imports(str(question.get("header") or ""))
    extra = [m for m in submission.imports if m not in allowed]
    if extra:
        issues.append(Issue(BAD_IMPORT, f"the proof imports {', '.join(extra)}, which the header does not ({', '.join(sorted(allowed)) or 'nothing'})",
                            details={"imports": extra}))
    statement = str(question.get("statement") or "")
    if statement:
        if _decl_start(code_nc, submission.name) is None:
            issues.append(Issue(STATEMENT_CHANGED, f"the code does not declare `theorem {submission.name}`; keep the given name and statement"))
        elif not heads_match(submission.code, statement, submission.name):
            issues.append(Issue(STATEMENT_CHANGED,
                                f"the header of `theorem {submission.name}` differs from the given statement; prove it exactly as stated",
                                details={"text_check": True}))
    return issues


__all__ = [
    "BAD_IMPORT", "DISALLOWED_AXIOM", "Issue", "LEAN_ERROR", "LEAN_REASONS", "NATIVE_DECIDE", "NO_PROOF", "PROOF_CHECKED",
    "SORRY", "STATEMENT_CHANGED", "Submission", "UNSAFE_CONSTRUCT", "UNVERIFIED", "build_submission", "extract_lean_block",
    "header_imports", "heads_match", "normalize_ws", "statement_head", "static_issues", "strip_comments", "submitted_head",
    "theorem_name",
]
