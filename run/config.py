"""Run configuration: which model each role uses, the budget, and the verifier settings.

Settings come, in increasing priority, from defaults, an optional TOML file (``--config``), the
usual OpenAI environment variables (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``) and command-line flags.
A TOML file may give each role its own endpoint and model::

    [llm]                     # defaults for every role
    base_url = "http://127.0.0.1:8000/v1"   # vLLM, llama.cpp server, Ollama (/v1), OpenAI, ...
    model = "Qwen/Qwen2.5-7B-Instruct"
    temperature = 0.2
    max_tokens = 1536         # per model call (completion tokens)

    [roles.reviser]           # e.g. a stronger model for revisions
    base_url = "https://api.openai.com/v1"
    model = "gpt-4o-mini"
    api_key_env = "OPENAI_API_KEY"

    [budget]
    attempts = 4
    reflections = 2
    answer_guided = true
    tokens = 24000
    # seconds = 900         # optional wall-clock limit (off by default)
    mc_samples = 3          # multiple choice that needs its options: accepted only when 3 samples pick the correct letter

    [run]
    tools = ["python"]        # or "python,calculator", "basic", "all"; the Solver and Reviser run Python in a sandbox
    python_timeout_s = 20     # per execution of model code

    [verifier]
    tolerance = "sig_figs"    # or "default", "scibench" (5% relative, as SciBench grades)
    steps = "gate"            # the step checker: "gate" (a false calculation rejects), "flag" (recorded only), "off"
    rel_tol = 1e-4            # a fixed relative tolerance of numeric answers instead
    by_subject = { formal = "lean" }   # verifier per subject (plugins register by entry point)
    timeout_s = 10            # per check, in a worker process
    memory_mb = 1024

When no role has a ``base_url`` (and ``OPENAI_BASE_URL`` is unset), every role uses the embedded
local model (:mod:`scireflect.embedded`).
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..agents.roles import ROLES
from ..graphs.budget import Budget
from ..verifiers.answer.compare import STEP_MODES
from ..verifiers.lean.config import LeanSettings


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message says which and where."""


@dataclass(frozen=True)
class LLMSettings:
    """How one role reaches its model.

    Attributes:
        base_url: an OpenAI-compatible endpoint (``.../v1``); ``None`` means the embedded model.
        replicas: further endpoints serving the same model (e.g. several vLLM servers); questions are
            spread over ``base_url`` and these by a stable hash of the question id, and all calls of
            one question go to one endpoint. In TOML or on the command line, give ``base_url`` as
            a list / repeat ``--base-url``.
        model: model name as the endpoint knows it; ``None`` with the embedded model.
        api_key_env: environment variable holding the API key (default ``OPENAI_API_KEY``; local
            servers accept any key, and ``"local"`` is sent when the variable is unset).
        temperature: sampling temperature.
        max_tokens: completion tokens per call.
        request_timeout_s: seconds without a streamed token before a request is abandoned (a timeout
            on silence, time to the first token included; a long generation is never cut by it).
        max_retries: retries of one call on transient faults (429, 5xx, connection, timeout, bad body,
            empty completion), with exponential backoff and jitter or the server's Retry-After.
        retry_backoff_s: the first backoff ceiling in seconds (doubling per retry, up to 20 s).
    """

    base_url: str | None = None
    replicas: tuple[str, ...] = ()
    model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.2
    max_tokens: int = 1536
    request_timeout_s: float = 600.0
    max_retries: int = 4
    retry_backoff_s: float = 0.5

    @property
    def embedded(self) -> bool:
        return self.base_url is None

    def api_key(self) -> str:
        return os.environ.get(self.api_key_env) or "local"


@dataclass(frozen=True)
class VerifierSettings:
    """Verifier settings.

    Attributes:
        rel_tol: relative tolerance of numeric answers (``None``: the tolerance policy decides).
        tolerance: ``default`` (exact references exact, rounded decimals to their last digit),
            ``sig_figs`` (from the reference's significant figures) or ``scibench`` (5% relative).
        timeout_s / memory_mb: per check, in the sandboxed worker process (seconds, MiB).
        default: the verifier name for subjects not in ``by_subject`` (see ``scireflect.verifiers``
            registry: built-ins ``answer``, ``answer-inprocess``; plugins by entry point).
        by_subject: ``{subject: verifier name}``.
        ensemble: ask math-verify when our symbolic check cannot decide (it can only turn that
            into "equal"; never for numbers or units).
        steps: the step checker (:mod:`scireflect.verifiers.steps`): ``gate`` (default: a response
            whose final answer matches but whose reasoning has a false calculation claim is rejected,
            reason ``step_error``), ``flag`` (claims checked and recorded, acceptance unchanged) or ``off``.
    """

    rel_tol: float | None = None
    tolerance: str | None = None
    timeout_s: float = 10.0
    memory_mb: int = 1024
    default: str = "answer"
    by_subject: dict[str, str] = field(default_factory=dict)
    steps: str = "gate"
    ensemble: bool = True


@dataclass(frozen=True)
class RunSettings:
    """Everything a run needs besides the input file and the output directory."""

    roles: dict[str, LLMSettings] = field(default_factory=lambda: {r: LLMSettings() for r in ROLES})
    budget: Budget = field(default_factory=Budget)
    verifier: VerifierSettings = field(default_factory=VerifierSettings)
    concurrency: int = 2
    """Model calls in flight at once (the run's call slots, :class:`~graphs.call_slots.CallSlots`);
    with the embedded model also its server slots."""
    lookahead: int | None = None
    """Questions admitted beyond ``concurrency``: they prepare their next call (and are checked and
    recorded) while the slots stay busy, so that the endpoint never waits on the framework.
    ``None``: ``concurrency`` for a remote endpoint, 0 on the embedded model (where a question
    keeps its server slot, and its prompt cache, from one call to the next)."""
    abort_after_transport_errors: int = 8
    tools: tuple[str, ...] = ()
    """Tools by name (:data:`scireflect.agents.tools.TOOL_NAMES`): ``calculator``, ``unit_converter``,
    ``answer_format_check`` (the Solver and the Critic) and ``python`` (the Solver and the Reviser)."""
    tool_format: str = "auto"
    """How ``python`` reaches the model: ``text`` (it writes ```python / ```output blocks, run by
    :mod:`scireflect.agents.code_loop`), ``calls`` (a LangChain tool, for endpoints with tool
    calling) or ``auto`` (``text`` on the embedded model, else ``calls``)."""
    max_tool_rounds: int = 4
    """Tool executions per agent call, in either format (calls past it are answered "not run:
    limit reached"; in ``text``, code blocks run per call)."""
    python_timeout_s: float = 20.0
    """Wall-clock seconds of one execution of model code in the sandbox (CPU time: three quarters of it)."""
    prompt_variant: str | None = None
    max_question_bytes: int = 1_000_000
    embedded_model: str | None = None
    gguf_path: Path | None = None
    mmproj_path: Path | None = None
    """A llama.cpp multimodal projector GGUF served beside ``gguf_path`` (the model then takes images)."""
    figures: str = "image"
    """How figures reach the models: ``image``, ``text`` (caption, OCR, mentions) or ``both``
    (:data:`scireflect.agents.prompts.FIGURE_MODES`)."""
    ocr: bool = True
    """Fill a figure question's missing ``ocr`` with Tesseract before its first model call."""
    ocr_timeout_s: float = 30.0
    """Seconds Tesseract may take per figure."""
    speculative: str = "off"
    """Speculative decoding on the embedded server: ``off``, ``auto`` or a draft model name
    (:func:`scireflect.embedded.choice.embedded_draft`). Off by default: llama.cpp's CPU kernels are
    not batch-invariant, so greedy output with a draft can differ at near-ties (see
    ``tests/test_speculative_identity.py``)."""
    slot_affinity: bool = True
    """Keep each question's calls on one embedded-server slot (prompt-cache reuse;
    :class:`scireflect.embedded.SlotAffinity`)."""
    embedded_threads: int | None = None
    """CPU threads of the embedded server (default: one per core)."""
    lean: LeanSettings = field(default_factory=LeanSettings)
    judge: str = "off"
    """The model reviewer on accepted attempts (``[judge] mode``, ``--judge``): ``off``, ``flag`` or
    ``gate`` (:attr:`scireflect.graphs.context.AnnotationContext.judge`); its model is the Critic's."""
    checkpoints: str | None = None
    """A ``postgresql://`` URL: LangGraph's checkpoints go to that database (one schema per run,
    :mod:`scireflect.run.postgres`); ``None``: a SQLite file in the run directory."""
    checkpoint_schema: str | None = None
    """The PostgreSQL schema; set by the Ray driver so that every shard shares the run's (by default
    the runner names it after ``run.json``'s run id)."""

    @property
    def uses_embedded(self) -> bool:
        return any(s.embedded for s in self.roles.values())

    @property
    def lookahead_questions(self) -> int:
        """``lookahead`` with its default resolved: ``concurrency`` for an endpoint, 0 on the embedded model."""
        return self.lookahead if self.lookahead is not None else (0 if self.uses_embedded else self.concurrency)

    @property
    def questions_in_flight(self) -> int:
        """Questions the runner works on at once: ``concurrency`` plus :attr:`lookahead_questions`."""
        return self.concurrency + self.lookahead_questions


_LLM_KEYS = {f for f in LLMSettings.__dataclass_fields__}

# What each key of a table must be: checked before any setting is used, so that a bad value is a
# one-line error naming the key, never a traceback in the middle of a run.
_LLM_SPEC = {"base_url": "url", "model": "str", "api_key_env": "str", "temperature": "num>=0", "max_tokens": "int>=16",
             "request_timeout_s": "num>0", "max_retries": "int>=0", "retry_backoff_s": "num>=0"}
_VERIFIER_SPEC = {"rel_tol": "num>=0", "tolerance": "str", "timeout_s": "num>0", "memory_mb": "int>=0", "default": "str",
                  "by_subject": "table", "ensemble": "bool", "steps": "str"}
_RUN_SPEC = {"concurrency": "int>=1", "lookahead": "int>=0", "prompt_variant": "str", "embedded_model": "str", "gguf": "str",
             "tool_format": "str", "max_tool_rounds": "int>=1", "max_question_bytes": "int>=1", "python_timeout_s": "num>0",
             "mmproj": "str", "figures": "str", "ocr": "bool", "ocr_timeout_s": "num>0", "checkpoints": "str", "speculative": "str",
             "slot_affinity": "bool", "embedded_threads": "int>=1"}
TOOL_FORMATS = ("auto", "text", "calls")
JUDGE_MODES = ("off", "flag", "gate")


def _check_value(value: Any, kind: str, where: str, key: str) -> None:
    """Raise :class:`ConfigError` unless ``value`` is of ``kind`` (``str``, ``url``, ``bool``, ``table``,
    ``int>=N``, ``num>=N``, ``num>N``; numbers must be finite)."""
    if kind in ("str", "url"):
        ok = isinstance(value, str) and bool(value.strip())
        if ok and kind == "url":
            ok = value.startswith(("http://", "https://"))
        expected = "an http(s):// URL" if kind == "url" else "a non-empty string"
    elif kind == "bool":
        ok, expected = isinstance(value, bool), "true or false"
    elif kind == "table":
        ok, expected = isinstance(value, dict), "a table"
    else:
        number, op, bound = re.fullmatch(r"(int|num)(>=|>)(\d+)", kind).groups()
        integral = number == "int"
        ok = (isinstance(value, int) if integral else isinstance(value, (int, float))) and not isinstance(value, bool)
        ok = ok and math.isfinite(value) and (value >= int(bound) if op == ">=" else value > int(bound))
        expected = f"{'an integer' if integral else 'a number'} {op} {bound}"
    if not ok:
        raise ConfigError(f"{where}: {key} must be {expected}, not {value!r}")


def _check_table(table: Any, spec: dict[str, str], where: str) -> dict[str, Any]:
    """``table`` as a dict after checking that it is a table and that every known key has the right kind."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table ([section] with key = value lines), not {table!r}")
    for key, value in table.items():
        if key in spec:
            _check_value(value, spec[key], where, key)
    return table


def _llm_from(table: dict[str, Any], base: LLMSettings, where: str) -> LLMSettings:
    table = dict(_check_table(table, {k: v for k, v in _LLM_SPEC.items() if k != "base_url"}, where))
    urls = table.get("base_url")
    if isinstance(urls, (list, tuple)):
        if not urls:
            raise ConfigError(f"{where}: base_url must be a URL or a non-empty list of URLs")
        for url in urls:
            _check_value(url, "url", where, "base_url")
        table["base_url"], table["replicas"] = urls[0], tuple(urls[1:])
    elif "base_url" in table:
        _check_value(urls, "url", where, "base_url")
        table["replicas"] = ()
    unknown = set(table) - _LLM_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_LLM_KEYS))}")
    try:
        return replace(base, **table)
    except TypeError as exc:  # pragma: no cover - guarded by the key check
        raise ConfigError(f"{where}: {exc}") from exc


def _check_verifier_names(verifier: VerifierSettings, where: str) -> None:
    """Every verifier name must be built in or installed (plugins register by entry point)."""
    from ..verifiers.registry import available_verifiers

    known = available_verifiers()
    for name in [verifier.default, *verifier.by_subject.values()]:
        if not isinstance(name, str) or name not in known:
            raise ConfigError(f"{where}: unknown verifier {name!r}; known: {', '.join(known)} (plugins register "
                              "through the 'scireflect.verifiers' entry point group)")


def load_settings(
    config_path: Path | None = None,
    *,
    cli_llm: dict[str, Any] | None = None,
    budget_spec: str | None = None,
    concurrency: int | None = None,
    lookahead: int | None = None,
    prompt_variant: str | None = None,
    embedded_model: str | None = None,
    gguf_path: Path | None = None,
    rel_tol: float | None = None,
    tolerance: str | None = None,
    steps: str | None = None,
    tools: str | bool | tuple[str, ...] | None = None,
    tool_format: str | None = None,
    lean: dict[str, Any] | None = None,
    mmproj_path: Path | None = None,
    figures: str | None = None,
    ocr: bool | None = None,
    checkpoints: str | None = None,
    speculative: str | None = None,
    slot_affinity: bool | None = None,
    embedded_threads: int | None = None,
    judge: str | None = None,
) -> RunSettings:
    """Merge defaults, the TOML file, the environment and command-line values.

    Args:
        config_path: optional TOML file (see the module docstring).
        cli_llm: LLM flags for every role (``base_url``, ``model``, ``temperature``, ``max_tokens``);
            ``None`` values are ignored.
        budget_spec: ``"attempts=4,tokens=20000,..."`` (see :meth:`Budget.parse`), applied over the file's.
        mmproj_path / figures / ocr: ``--mmproj``, ``--figures`` and ``--ocr/--no-ocr`` (``[run]`` keys
            ``mmproj``, ``figures``, ``ocr``, ``ocr_timeout_s``).
        checkpoints: ``postgresql://...`` for PostgreSQL checkpoints (``[run] checkpoints``), else SQLite.
        concurrency: model calls in flight; default ``[run] concurrency``, else, when a role uses the
            embedded model, :func:`scireflect.embedded.default_slots` of this machine's cores, else 2.
        lookahead: questions admitted beyond ``concurrency`` (``[run] lookahead``; see :attr:`RunSettings.lookahead`).
        speculative / slot_affinity / embedded_threads: the embedded server's settings (see
            :class:`RunSettings`), over ``[run]``'s.
        tools: tool names, ``"python,calculator"`` or a tuple (also ``all``, ``basic``, ``none``; see
            :func:`scireflect.agents.tools.parse_tool_names`), over ``[run] tools`` (a list, such a
            string, or the old ``true``/``false``).
        tool_format: ``auto``, ``text`` or ``calls`` (see :attr:`RunSettings.tool_format`).
        steps: the step checker's mode ``gate``, ``flag`` or ``off`` (``[verifier] steps``).
        judge: the model reviewer's mode ``off``, ``flag`` or ``gate`` (``[judge] mode``).

    Raises:
        ConfigError: unreadable or invalid TOML, unknown keys, invalid values, a role without a model
            on an explicit endpoint.
    """
    data: dict[str, Any] = {}
    if config_path is not None:
        try:
            data = tomllib.loads(Path(config_path).read_text())
        except OSError as exc:
            raise ConfigError(f"{config_path}: cannot read config ({exc.strerror})") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_path}: invalid TOML ({exc})") from exc
    where = str(config_path) if config_path else "config"
    for section in ("llm", "roles", "budget", "verifier", "run", "lean", "judge"):
        _check_table(data.get(section, {}), {}, f"{where} [{section}]")
    unknown = set(data) - {"llm", "roles", "budget", "verifier", "run", "lean", "judge"}
    if unknown:
        raise ConfigError(f"{where}: unknown section(s) {', '.join(sorted(unknown))}")

    base = LLMSettings()
    env_url = os.environ.get("OPENAI_BASE_URL")
    if env_url:
        base = replace(base, base_url=env_url)
    base = _llm_from(data.get("llm", {}), base, f"{where} [llm]")
    cli = {k: v for k, v in (cli_llm or {}).items() if v is not None and v != []}
    base = _llm_from(cli, base, "command line")
    role_tables = data.get("roles", {})
    unknown_roles = set(role_tables) - set(ROLES)
    if unknown_roles:
        raise ConfigError(f"{where}: unknown role(s) {', '.join(sorted(unknown_roles))}; roles are {', '.join(ROLES)}")
    roles = {}
    for role in ROLES:
        settings = _llm_from(role_tables.get(role, {}), base, f"{where} [roles.{role}]")
        settings = _llm_from(cli, settings, "command line")
        if settings.base_url is not None and not settings.model:
            raise ConfigError(f"role {role}: endpoint {settings.base_url} needs a model name (--model or [llm] model)")
        if settings.max_tokens < 16:
            raise ConfigError(f"role {role}: max_tokens must be at least 16")
        roles[role] = settings

    budget_table = data.get("budget", {})
    try:
        # a list (strategy = ["cot", "reflect", ...]) is Budget.parse's "cot/reflect/..."
        spec = ",".join(f"{k}={'/'.join(map(str, v)) if isinstance(v, list) else v}" for k, v in budget_table.items())
        if budget_spec:
            spec = f"{spec},{budget_spec}" if spec else budget_spec
        budget = Budget.parse(spec) if spec else Budget()
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc

    verifier_table = dict(_check_table(data.get("verifier", {}), _VERIFIER_SPEC, f"{where} [verifier]"))
    unknown = set(verifier_table) - set(VerifierSettings.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"{where} [verifier]: unknown key(s) {', '.join(sorted(unknown))}")
    if rel_tol is not None:
        verifier_table["rel_tol"] = rel_tol
    if tolerance is not None:
        verifier_table["tolerance"] = tolerance
    if verifier_table.get("tolerance") not in (None, "default", "sig_figs", "scibench"):
        raise ConfigError(f"verifier tolerance must be default, sig_figs or scibench, not '{verifier_table['tolerance']}'")
    if steps is not None:
        verifier_table["steps"] = steps
    if verifier_table.get("steps", "gate") not in STEP_MODES:
        raise ConfigError(f"verifier steps must be {', '.join(STEP_MODES)}, not '{verifier_table['steps']}'")
    verifier = VerifierSettings(**verifier_table)
    _check_verifier_names(verifier, f"{where} [verifier]")

    lean_table = {**data.get("lean", {}), **{k: v for k, v in (lean or {}).items() if v is not None}}
    try:
        lean_settings = LeanSettings.from_mapping(lean_table, where=f"{where} [lean]")
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc

    run_table = _check_table(data.get("run", {}), _RUN_SPEC, f"{where} [run]")
    uses_embedded = any(r.embedded for r in roles.values())
    concurrency = concurrency if concurrency is not None else run_table.get("concurrency")
    if concurrency is None:
        from ..embedded import available_cores, default_slots

        concurrency = default_slots(available_cores()) if uses_embedded else 2
    _check_value(concurrency, "int>=1", "settings", "concurrency")
    lookahead = lookahead if lookahead is not None else run_table.get("lookahead")
    if lookahead is not None:
        _check_value(lookahead, "int>=0", "settings", "lookahead")
    checkpoints = checkpoints or run_table.get("checkpoints")
    if checkpoints and not str(checkpoints).startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"checkpoints must be a postgresql:// URL (SQLite in the run directory is the default), not {checkpoints!r}")
    embedded_model = embedded_model or run_table.get("embedded_model")
    speculative = (speculative or run_table.get("speculative") or "off").strip().lower()
    if embedded_model or speculative not in ("auto", "off"):
        from ..embedded import EmbeddedModelError, resolve_embedded_model

        try:  # checked here, before any model is joined or started
            embedded_model = resolve_embedded_model(embedded_model) if embedded_model else None
            speculative = speculative if speculative in ("auto", "off") else resolve_embedded_model(speculative)
        except EmbeddedModelError as exc:
            raise ConfigError(str(exc) + "; speculative also takes auto or off") from None
    embedded_threads = embedded_threads if embedded_threads is not None else run_table.get("embedded_threads")
    if embedded_threads is not None:
        _check_value(embedded_threads, "int>=1", "settings", "embedded_threads")
    figures = figures or run_table.get("figures", "image")
    from ..agents.prompts import FIGURE_MODES

    if figures not in FIGURE_MODES:
        raise ConfigError(f"figures must be one of {', '.join(FIGURE_MODES)}, not {figures!r}")
    mmproj_path = mmproj_path or (Path(run_table["mmproj"]) if run_table.get("mmproj") else None)
    if mmproj_path is not None and not uses_embedded:
        raise ConfigError("--mmproj goes with the embedded model (--gguf or --embedded-model); every role has an endpoint")
    from ..agents.tools import parse_tool_names

    tool_spec = tools if tools is not None else run_table.get("tools")
    if tool_spec is not None and not isinstance(tool_spec, (str, bool, list, tuple)):
        raise ConfigError(f"{where} [run]: tools must be a list of tool names, not {tool_spec!r}")
    try:
        tool_names = parse_tool_names(tool_spec)
    except (ValueError, AttributeError, TypeError) as exc:
        raise ConfigError(f"tools: {exc}") from None
    judge_table = _check_table(data.get("judge", {}), {"mode": "str"}, f"{where} [judge]")
    if set(judge_table) - {"mode"}:
        raise ConfigError(f"{where} [judge]: unknown key(s) {', '.join(sorted(set(judge_table) - {'mode'}))}")
    judge = judge or judge_table.get("mode", "off")
    if judge not in JUDGE_MODES:
        raise ConfigError(f"judge mode must be one of {', '.join(JUDGE_MODES)}, not {judge!r}")
    tool_format = tool_format or run_table.get("tool_format", "auto")
    if tool_format not in TOOL_FORMATS:
        raise ConfigError(f"tool_format must be one of {', '.join(TOOL_FORMATS)}, not {tool_format!r}")
    return RunSettings(
        roles=roles,
        budget=budget,
        verifier=verifier,
        concurrency=concurrency,
        lookahead=lookahead,
        prompt_variant=prompt_variant or run_table.get("prompt_variant"),
        embedded_model=embedded_model,
        gguf_path=gguf_path or (Path(run_table["gguf"]) if run_table.get("gguf") else None),
        tools=tool_names,
        tool_format=tool_format,
        max_tool_rounds=int(run_table.get("max_tool_rounds", 4)),
        python_timeout_s=float(run_table.get("python_timeout_s", RunSettings.python_timeout_s)),
        max_question_bytes=int(run_table.get("max_question_bytes", RunSettings.max_question_bytes)),
        mmproj_path=mmproj_path,
        figures=figures,
        ocr=bool(run_table.get("ocr", True)) if ocr is None else ocr,
        ocr_timeout_s=float(run_table.get("ocr_timeout_s", RunSettings.ocr_timeout_s)),
        speculative=speculative,
        slot_affinity=bool(run_table.get("slot_affinity", True)) if slot_affinity is None else slot_affinity,
        embedded_threads=embedded_threads,
        lean=lean_settings,
        judge=judge,
        checkpoints=checkpoints,
    )
