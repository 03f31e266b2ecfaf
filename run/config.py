"""Run configuration: which model each role uses, the budget, and the verifier settings.

Each setting is declared once, on its settings field (:func:`setting`): its type and range (the
check), default, TOML table and key, environment fallback and command-line flag and help. A value
comes, in increasing priority, from the default, the environment fallback (``OPENAI_BASE_URL``), an
optional TOML file (``--config``) and the command line; :func:`load_settings` merges them and
checks every value, so a bad one is a one-line :class:`ConfigError` naming the file, table and key.
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

import dataclasses
import math
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..agents.figures import FIGURE_MODES
from ..agents.names import ROLES
from ..graphs.budget import Budget
from ..verifiers.answer.compare import STEP_MODES
from ..verifiers.lean.config import LeanSettings

TOOL_FORMATS = ("auto", "text", "calls")
JUDGE_MODES = ("off", "flag", "gate")
TOLERANCE_POLICIES = ("default", "sig_figs", "scibench")
SECTIONS = ("llm", "roles", "budget", "verifier", "run", "lean", "judge")
"""The tables of a TOML settings file."""


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message says which and where."""


@dataclass(frozen=True)
class Setting:
    """The declaration of one setting, kept in its settings field's metadata (:func:`setting`).

    Attributes:
        section: its TOML table (``run``, ``llm`` and ``[roles.NAME]``, ``verifier``, ``judge``, ``budget``).
        check: what a value must be (:func:`check_value`): ``str``, ``url``, ``urls`` (a URL or a
            list of them), ``bool``, ``table``, ``path``, ``tools``, ``budget``, ``int>=N``, ``num>=N``,
            ``num>N``.
        key: its TOML key (default: the field's name).
        choices: the values a ``str`` may take (none: any non-empty string).
        flag: its command-line option (``--concurrency``; ``--ocr/--no-ocr`` for a switch), if any.
        help: the option's help text (``scireflect annotate --help``).
        env: an environment variable read when neither the TOML file nor the command line sets it.
    """

    section: str
    check: str
    key: str = ""
    choices: tuple[str, ...] = ()
    flag: str | None = None
    help: str | None = None
    env: str | None = None

    def numeric(self) -> tuple[bool, str, int] | None:
        """``(integral, ">=" or ">", N)`` of an ``int>=N``/``num>=N``/``num>N`` check, else ``None``."""
        m = re.fullmatch(r"(int|num)(>=|>)(\d+)", self.check)
        return None if m is None else (m[1] == "int", m[2], int(m[3]))

    def bound(self) -> int | float | None:
        """The inclusive lower bound of an ``int>=N``/``num>=N`` check (for the option's ``min``), else ``None``."""
        numeric = self.numeric()
        if numeric is None or numeric[1] != ">=":
            return None
        return numeric[2] if numeric[0] else float(numeric[2])


def setting(default: Any = dataclasses.MISSING, *, section: str, check: str, key: str = "", choices: tuple[str, ...] = (),
            flag: str | None = None, help: str | None = None, env: str | None = None,
            default_factory: Any = dataclasses.MISSING) -> Any:
    """A settings dataclass field declared with its :class:`Setting` (the arguments but the default)."""
    declared = Setting(section, check, key, choices, flag, help, env)
    return field(default=default, default_factory=default_factory, metadata={"setting": declared})


def declared_settings(cls: type) -> dict[str, Setting]:
    """``{field name: Setting}`` of a settings dataclass (:class:`LLMSettings`, :class:`VerifierSettings`, :class:`RunSettings`)."""
    return {f.name: f.metadata["setting"] for f in fields(cls) if "setting" in f.metadata}


def setting_of(cls: type, name: str) -> Setting:
    """The :class:`Setting` of field ``name`` of ``cls``.

    Raises:
        KeyError: ``name`` is not a declared setting of ``cls``.
    """
    return declared_settings(cls)[name]


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

    base_url: str | None = setting(None, section="llm", check="urls", flag="--base-url", env="OPENAI_BASE_URL",
                                   help="OpenAI-compatible endpoint for every role (default: $OPENAI_BASE_URL, else the "
                                        "embedded model). Repeat it for replicas of one model.")
    replicas: tuple[str, ...] = ()
    model: str | None = setting(None, section="llm", check="str", flag="--model", help="Model name at the endpoint.")
    api_key_env: str = setting("OPENAI_API_KEY", section="llm", check="str")
    temperature: float = setting(0.2, section="llm", check="num>=0", flag="--temperature", help="Sampling temperature [default: 0.2].")
    max_tokens: int = setting(1536, section="llm", check="int>=16", flag="--max-tokens",
                              help="Completion tokens per model call [default: 1536].")
    request_timeout_s: float = setting(600.0, section="llm", check="num>=1", flag="--request-timeout",
                                       help="Give up on a call after this long without a new token (time to the first "
                                            "token included); a long generation is never cut [default: 600].")
    max_retries: int = setting(4, section="llm", check="int>=0")
    retry_backoff_s: float = setting(0.5, section="llm", check="num>=0")

    @property
    def embedded(self) -> bool:
        return self.base_url is None

    def api_key(self) -> str:
        return os.environ.get(self.api_key_env) or "local"


@dataclass(frozen=True)
class VerifierSettings:
    """Verifier settings (TOML ``[verifier]``).

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

    rel_tol: float | None = setting(None, section="verifier", check="num>=0", flag="--rel-tol",
                                    help="A fixed relative tolerance of numeric answers.")
    tolerance: str | None = setting(None, section="verifier", check="str", choices=TOLERANCE_POLICIES, flag="--tolerance",
                                    help="Numeric tolerance policy: default, sig_figs, scibench.")
    timeout_s: float = setting(10.0, section="verifier", check="num>0")
    memory_mb: int = setting(1024, section="verifier", check="int>=0")
    default: str = setting("answer", section="verifier", check="str")
    by_subject: dict[str, str] = setting(section="verifier", check="table", default_factory=dict)
    steps: str = setting("gate", section="verifier", check="str", choices=STEP_MODES, flag="--steps",
                         help="Step checker: gate (default: a false calculation in the reasoning rejects a matching answer), "
                              "flag (recorded only), off.")
    ensemble: bool = setting(True, section="verifier", check="bool")


@dataclass(frozen=True)
class RunSettings:
    """Everything a run needs besides the input file and the output directory."""

    roles: dict[str, LLMSettings] = field(default_factory=lambda: {r: LLMSettings() for r in ROLES})
    budget: Budget = setting(section="budget", check="budget", flag="--budget", default_factory=Budget,
                             help="Per-question limits, e.g. attempts=4,tokens=24000 "
                                  "(seconds=S adds a time limit; off by default; mc_samples=3: samples that must agree on the "
                                  "letter of a multiple-choice question that needs its options; "
                                  "strategy=cot/program/resample/answer_guided: the order of attempts, the default; "
                                  "reflections=2: SciGLM's loop, cot/reflect/reflect/answer_guided).")
    verifier: VerifierSettings = field(default_factory=VerifierSettings)
    concurrency: int = setting(2, section="run", check="int>=1", flag="--concurrency",
                               help="Model calls in flight at once; with the embedded model also its server slots "
                                    "[default: 2; embedded model on 6+ cores: one per 2 cores, at most 8].")
    """Model calls in flight at once (the run's call slots, :class:`~graphs.call_slots.CallSlots`);
    with the embedded model also its server slots."""
    lookahead: int | None = setting(None, section="run", check="int>=0", flag="--lookahead",
                                    help="Questions admitted beyond K, prepared, checked and recorded while the K calls run "
                                         "[default: K with an endpoint, 0 with the embedded model].")
    """Questions admitted beyond ``concurrency``: they prepare their next call (and are checked and
    recorded) while the slots stay busy, so that the endpoint never waits on the framework.
    ``None``: ``concurrency`` for a remote endpoint, 0 on the embedded model (where a question
    keeps its server slot, and its prompt cache, from one call to the next)."""
    abort_after_transport_errors: int = 8
    tools: tuple[str, ...] = setting((), section="run", check="tools", flag="--tools",
                                     help="Tools by name, comma-separated: python (the Solver and Reviser run Python in a sandbox), "
                                          "calculator, unit_converter, answer_format_check (the Solver and Critic); 'basic' is the "
                                          "last three, 'all' every tool, 'none' none [default: none].")
    """Tools by name (:data:`scireflect.agents.tools.TOOL_NAMES`): ``calculator``, ``unit_converter``,
    ``answer_format_check`` (the Solver and the Critic) and ``python`` (the Solver and the Reviser)."""
    tool_format: str = setting("auto", section="run", check="str", choices=TOOL_FORMATS, flag="--tool-format",
                               help="How python reaches the model: text (```python/```output blocks), calls (tool "
                                    "calling), auto (text on the embedded model) [default: auto].")
    """How ``python`` reaches the model: ``text`` (it writes ```python / ```output blocks, run by
    :mod:`scireflect.agents.code_loop`), ``calls`` (a LangChain tool, for endpoints with tool
    calling) or ``auto`` (``text`` on the embedded model, else ``calls``)."""
    max_tool_rounds: int = setting(4, section="run", check="int>=1")
    """Tool executions per agent call, in either format (calls past it are answered "not run:
    limit reached"; in ``text``, code blocks run per call)."""
    python_timeout_s: float = setting(20.0, section="run", check="num>0")
    """Wall-clock seconds of one execution of model code in the sandbox (CPU time: three quarters of it)."""
    prompt_variant: str | None = setting(None, section="run", check="str", flag="--prompt-variant",
                                         help="Force a prompt variant: math, physics, chemistry, general [default: by subject].")
    max_question_bytes: int = setting(1_000_000, section="run", check="int>=1")
    embedded_model: str | None = setting(None, section="run", check="str", flag="--embedded-model",
                                         help="Embedded model: a name from 'scireflect models' or an alias (1.5b, 0.5b).")
    gguf_path: Path | None = setting(None, section="run", check="path", key="gguf", flag="--gguf",
                                     help="Serve this GGUF file as the embedded model instead.")
    mmproj_path: Path | None = setting(None, section="run", check="path", key="mmproj", flag="--mmproj",
                                       help="Multimodal projector GGUF served beside the embedded model, so that it takes the "
                                            "questions' figures (e.g. SmolVLM's or Qwen2.5-VL's mmproj file).")
    """A llama.cpp multimodal projector GGUF served beside ``gguf_path`` (the model then takes images)."""
    figures: str = setting("image", section="run", check="str", choices=FIGURE_MODES, flag="--figures",
                           help="How figures reach the models: image (the pixels), text (caption, OCR text and "
                                "mentions, for text-only models) or both [default: image].")
    """How figures reach the models: ``image``, ``text`` (caption, OCR, mentions) or ``both``
    (:data:`scireflect.agents.figures.FIGURE_MODES`)."""
    ocr: bool = setting(True, section="run", check="bool", flag="--ocr/--no-ocr",
                        help="Read a figure question's missing 'ocr' text with Tesseract [default: on].")
    """Fill a figure question's missing ``ocr`` with Tesseract before its first model call."""
    ocr_timeout_s: float = setting(30.0, section="run", check="num>0")
    """Seconds Tesseract may take per figure."""
    speculative: str = setting("off", section="run", check="str", flag="--speculative",
                               help="Embedded model's speculative decoding: auto (the 0.5B drafts for the 1.5B when both "
                                    "are installed), off, or a draft model name; greedy output can differ at near-ties "
                                    "[default: off].")
    """Speculative decoding on the embedded server: ``off``, ``auto`` or a draft model name
    (:func:`scireflect.embedded.choice.embedded_draft`). Off by default: llama.cpp's CPU kernels are
    not batch-invariant, so greedy output with a draft can differ at near-ties (see
    ``tests/test_speculative_identity.py``)."""
    slot_affinity: bool = setting(True, section="run", check="bool")
    """Keep each question's calls on one embedded-server slot (prompt-cache reuse;
    :class:`scireflect.embedded.SlotAffinity`)."""
    embedded_threads: int | None = setting(None, section="run", check="int>=1", flag="--embedded-threads",
                                           help="CPU threads of the embedded server [default: one per core].")
    """CPU threads of the embedded server (default: one per core)."""
    lean: LeanSettings = field(default_factory=LeanSettings)
    judge: str = setting("off", section="judge", check="str", key="mode", choices=JUDGE_MODES, flag="--judge",
                         help="Model reviewer on accepted attempts (the Critic's model names the earliest wrong step): "
                              "off, flag (recorded) or gate (accepted only when no step is wrong) [default: off].")
    """The model reviewer on accepted attempts (``[judge] mode``, ``--judge``): ``off``, ``flag`` or
    ``gate`` (:attr:`scireflect.graphs.context.AnnotationContext.judge`); its model is the Critic's."""
    checkpoints: str | None = setting(None, section="run", check="str", flag="--checkpoints",
                                      help="LangGraph checkpoints in PostgreSQL (postgresql://...) instead of SQLite in the run "
                                           "directory (needs scireflect[postgres]).")
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


def check_value(value: Any, declared: Setting, where: str, key: str) -> Any:
    """``value`` checked against ``declared`` and converted to the field's type (a ``path`` to a
    :class:`~pathlib.Path`, ``urls`` to ``(base_url, replicas)``, ``tools`` to tool names, ``budget``
    to a :class:`Budget`); numbers must be finite.

    Raises:
        ConfigError: ``"{where}: {key} must be {what}, not {value!r}"``.
    """
    kind = declared.check
    if kind == "urls":
        urls = list(value) if isinstance(value, list | tuple) else [value]
        if not urls:
            raise ConfigError(f"{where}: {key} must be a URL or a non-empty list of URLs")
        for url in urls:
            check_value(url, Setting(declared.section, "url"), where, key)
        return urls[0], tuple(urls[1:])
    if kind == "tools":
        from ..agents.tools import parse_tool_names

        if not isinstance(value, str | bool | list | tuple):
            raise ConfigError(f"{where}: tools must be a list of tool names, not {value!r}")
        try:
            return parse_tool_names(value)
        except (ValueError, AttributeError, TypeError) as exc:
            raise ConfigError(f"tools: {exc}") from None
    if kind == "budget":
        try:
            return Budget.from_table(value)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if kind in ("str", "url", "path"):
        ok = isinstance(value, str | Path) and bool(str(value).strip())
        if ok and kind == "url":
            ok = str(value).startswith(("http://", "https://"))
        expected = "an http(s):// URL" if kind == "url" else "a non-empty string"
    elif kind == "bool":
        ok, expected = isinstance(value, bool), "true or false"
    elif kind == "table":
        ok, expected = isinstance(value, dict), "a table"
    else:
        integral, op, bound = declared.numeric()
        ok = (isinstance(value, int) if integral else isinstance(value, int | float)) and not isinstance(value, bool)
        ok = ok and math.isfinite(value) and (value >= bound if op == ">=" else value > bound)
        expected = f"{'an integer' if integral else 'a number'} {op} {bound}"
    if not ok:
        raise ConfigError(f"{where}: {key} must be {expected}, not {value!r}")
    if declared.choices and value not in declared.choices:
        raise ConfigError(f"{where}: {key} must be one of {', '.join(declared.choices)}, not {value!r}")
    return Path(value) if kind == "path" else value


def _apply(settings: Any, table: Any, where: str, section: str | None = None) -> Any:
    """``settings`` with the values of one TOML ``section`` table (keys: its TOML keys) or, with no
    ``section``, of the command line (keys: field names) over it.

    Raises:
        ConfigError: not a table, an unknown key (the message lists the known ones), a bad value.
    """
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table ([section] with key = value lines), not {table!r}")
    declared = {(name if section is None else s.key or name): (name, s) for name, s in declared_settings(type(settings)).items()
                if s.check != "budget" and section in (None, s.section)}
    unknown = set(table) - set(declared)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(declared))}")
    changes: dict[str, Any] = {}
    for key, value in table.items():
        name, declared_setting = declared[key]
        checked = check_value(value, declared_setting, where, key)
        if declared_setting.check == "urls":
            changes["base_url"], changes["replicas"] = checked
        else:
            changes[name] = checked
    return replace(settings, **changes)


def _from_environment(settings: Any) -> Any:
    """``settings`` with each declared environment fallback that is set."""
    for name, declared in declared_settings(type(settings)).items():
        if declared.env and os.environ.get(declared.env):
            settings = _apply(settings, {name: os.environ[declared.env]}, f"${declared.env}")
    return settings


def _read_toml(config_path: Path | None) -> dict[str, Any]:
    if config_path is None:
        return {}
    try:
        data = tomllib.loads(Path(config_path).read_text())
    except OSError as exc:
        raise ConfigError(f"{config_path}: cannot read config ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: invalid TOML ({exc})") from exc
    unknown = set(data) - set(SECTIONS)
    if unknown:
        raise ConfigError(f"{config_path}: unknown section(s) {', '.join(sorted(unknown))}")
    for section in SECTIONS:
        if not isinstance(data.get(section, {}), dict):
            raise ConfigError(f"{config_path} [{section}] must be a table ([section] with key = value lines), not {data[section]!r}")
    return data


def _check_verifier_names(verifier: VerifierSettings, where: str) -> None:
    """Every verifier name must be built in or installed (plugins register by entry point)."""
    from ..verifiers.registry import available_verifiers

    known = available_verifiers()
    for name in [verifier.default, *verifier.by_subject.values()]:
        if not isinstance(name, str) or name not in known:
            raise ConfigError(f"{where}: unknown verifier {name!r}; known: {', '.join(known)} (plugins register "
                              "through the 'scireflect.verifiers' entry point group)")


COMMAND_LINE = "command line"


def load_settings(config_path: Path | None = None, **overrides: Any) -> RunSettings:
    """Merge defaults, environment fallbacks, the TOML file and command-line values into :class:`RunSettings`.

    Args:
        config_path: optional TOML file (see the module docstring).
        overrides: command-line values by field name, over everything else; ``None`` (and ``[]``)
            values are ignored. The names are the declared settings of :class:`LLMSettings` (for
            every role: ``base_url`` (a URL or a list: replicas), ``model``, ``temperature``, ...),
            :class:`VerifierSettings` (``rel_tol``, ``tolerance``, ``steps``, ...) and
            :class:`RunSettings` (``concurrency``, ``tools``, ``judge``, ``gguf_path``, ...);
            ``budget`` is a ``--budget`` spec (:meth:`Budget.parse`) applied over the file's
            ``[budget]`` table, ``lean`` a mapping over ``[lean]``.

    Unset, ``concurrency`` is :func:`scireflect.embedded.default_slots` of this machine's cores when
    a role uses the embedded model, else 2.

    Raises:
        ConfigError: unreadable or invalid TOML, unknown sections or keys, invalid values, a role
            without a model on an explicit endpoint, ``--mmproj`` without the embedded model.
        TypeError: an override that is not a declared setting (a programming error).
    """
    overrides = {k: v for k, v in overrides.items() if v is not None and v != []}
    budget_spec, lean = overrides.pop("budget", None), overrides.pop("lean", None)
    by_class = {cls: {k: overrides.pop(k) for k in set(overrides) & set(declared_settings(cls))}
                for cls in (LLMSettings, VerifierSettings, RunSettings)}
    if overrides:
        raise TypeError(f"load_settings: not a setting: {', '.join(sorted(overrides))}")
    data = _read_toml(config_path)
    where = str(config_path) if config_path else "config"

    base = _apply(_from_environment(LLMSettings()), data.get("llm", {}), f"{where} [llm]", "llm")
    role_tables = data.get("roles", {})
    unknown_roles = set(role_tables) - set(ROLES)
    if unknown_roles:
        raise ConfigError(f"{where}: unknown role(s) {', '.join(sorted(unknown_roles))}; roles are {', '.join(ROLES)}")
    roles = {}
    for role in ROLES:
        settings = _apply(base, role_tables.get(role, {}), f"{where} [roles.{role}]", "llm")
        settings = _apply(settings, by_class[LLMSettings], COMMAND_LINE)
        if settings.base_url is not None and not settings.model:
            raise ConfigError(f"role {role}: endpoint {settings.base_url} needs a model name (--model or [llm] model)")
        roles[role] = settings

    try:
        over = Budget.spec_items(budget_spec) if budget_spec else {}
        budget_table = {**data.get("budget", {}), **over}
        if over.keys() & {"reflections", "answer_guided"} and "strategy" not in over:
            budget_table.pop("strategy", None)  # --budget reflections=N asks for SciGLM's loop over the file's order
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    budget = check_value(budget_table, setting_of(RunSettings, "budget"), f"{where} [budget]", "budget")

    verifier = _apply(VerifierSettings(), data.get("verifier", {}), f"{where} [verifier]", "verifier")
    verifier = _apply(verifier, by_class[VerifierSettings], COMMAND_LINE)
    _check_verifier_names(verifier, f"{where} [verifier]")
    try:
        lean_settings = LeanSettings.from_mapping({**data.get("lean", {}), **{k: v for k, v in (lean or {}).items() if v is not None}},
                                                  where=f"{where} [lean]")
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc

    run = _apply(RunSettings(), data.get("run", {}), f"{where} [run]", "run")
    run = _apply(run, data.get("judge", {}), f"{where} [judge]", "judge")
    run = _apply(run, by_class[RunSettings], COMMAND_LINE)
    run = replace(run, roles=roles, budget=budget, verifier=verifier, lean=lean_settings)
    given = set(data.get("run", {})) | set(by_class[RunSettings])
    return _resolve_machine_settings(run, concurrency_given="concurrency" in given)


def _resolve_machine_settings(run: RunSettings, *, concurrency_given: bool) -> RunSettings:
    """The rules between settings, checked before any model is joined or started: the default
    concurrency on the embedded model, embedded model names and aliases, a ``postgresql://``
    checkpoint URL, ``--mmproj`` only with the embedded model.

    Raises:
        ConfigError: an unknown embedded model or draft, a checkpoint URL of another scheme, a projector without the embedded model.
    """
    concurrency = run.concurrency
    if not concurrency_given:
        from ..embedded import available_cores, default_slots

        concurrency = default_slots(available_cores()) if run.uses_embedded else 2
    if run.checkpoints and not run.checkpoints.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"checkpoints must be a postgresql:// URL (SQLite in the run directory is the default), not {run.checkpoints!r}")
    embedded_model, speculative = run.embedded_model, run.speculative.strip().lower()
    if embedded_model or speculative not in ("auto", "off"):
        from ..embedded import EmbeddedModelError, resolve_embedded_model

        try:
            embedded_model = resolve_embedded_model(embedded_model) if embedded_model else None
            speculative = speculative if speculative in ("auto", "off") else resolve_embedded_model(speculative)
        except EmbeddedModelError as exc:
            raise ConfigError(str(exc) + "; speculative also takes auto or off") from None
    if run.mmproj_path is not None and not run.uses_embedded:
        raise ConfigError("--mmproj goes with the embedded model (--gguf or --embedded-model); every role has an endpoint")
    return replace(run, concurrency=concurrency, embedded_model=embedded_model, speculative=speculative)


__all__ = ["COMMAND_LINE", "JUDGE_MODES", "SECTIONS", "TOLERANCE_POLICIES", "TOOL_FORMATS", "ConfigError", "LLMSettings", "RunSettings",
           "Setting", "VerifierSettings", "check_value", "declared_settings", "load_settings", "setting", "setting_of"]
