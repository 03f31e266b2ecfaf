"""The self-reflective annotation graph: solve -> verify [-> confirm] -> (critique -> revise | resample -> verify)* -> answer-guided.

SciGLM's self-reflective instruction annotation (Zhang et al. 2024, arXiv 2401.07950), with the
reflection kept instead of thrown away and answers checked by tools instead of a GPT-4 judge. One
thread per question (``thread_id`` = question id); with a checkpointer a killed run resumes a
half-finished question at its last completed node without repeating model calls. The nodes are in
:mod:`scireflect.graphs.nodes`, the state in :mod:`scireflect.graphs.state`, the loop's one
decision in :func:`scireflect.graphs.budget.decide`. Each attempt strategy of the budget's order
(``Budget.strategy``: ``cot`` = ``solve``, ``reflect`` = ``critique`` -> ``revise``, ``resample``,
``program``, ``answer_guided``) is a node here, and ``decide`` picks the next one. A multiple-choice question whose stem needs its
options (``mc_path`` ``k_sample``) is accepted only after ``confirm`` has drawn k-1 more samples of
the accepted attempt's prompt and all picked the correct letter; one answerable alone
(``options_free``) is solved without its options, its value mapped to them by the verifier.

Invoke with the question's state and the run's dependencies as LangGraph's runtime context::

    graph = build_annotation_graph(checkpointer=saver)
    final = await graph.ainvoke(initial_state(question, "physics"),
                                {"configurable": {"thread_id": question["id"]}},
                                context=AnnotationContext(agents=team, verify=verify_with(verifier), budget=budget))
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from .context import AnnotationContext
from .nodes import after_call, after_verify, answer_guided, confirm, critique, program, resample, revise, solve, verify
from .state import AnnotationState


def build_annotation_graph(checkpointer: Any = None, *, context_schema: type = AnnotationContext) -> CompiledStateGraph:
    """Wire and compile the annotation graph (``checkpointer``: e.g. ``AsyncSqliteSaver``; ``None`` in tests).

    ``context_schema`` is the type of the runtime context, :class:`AnnotationContext` or anything with
    its ``agents``, ``verify``, ``budget`` and ``prompts`` (LangGraph Studio's, in :mod:`scireflect.run.studio`).

    Examples:
        The graph has one node per step of the loop:

        >>> from scireflect.graphs.annotation import build_annotation_graph
        >>> graph = build_annotation_graph()
        >>> sorted(graph.get_graph().nodes)
        ['__end__', '__start__', 'answer_guided', 'confirm', 'critique', 'program', 'resample', 'revise', 'solve', 'verify']

        One question through it, with scripted models (any LangChain chat model will do) and the
        answer verifier in this process, on SciGLM's reflection loop (``max_reflections``; the
        default order resamples instead): the Solver's answer is wrong, the Critic finds the step,
        the Reviser's answer is accepted:

        >>> import asyncio
        >>> from langchain_core.language_models import FakeListChatModel
        >>> from scireflect.agents.roles import AgentTeam
        >>> from scireflect.graphs.budget import Budget
        >>> from scireflect.graphs.context import AnnotationContext, verify_with
        >>> from scireflect.graphs.state import initial_state
        >>> from scireflect.verifiers import InProcessAnswerVerifier
        >>> replies = {"solver": [r"In May she sold 48 * 2 = 96, so 48 + 96 = \\boxed{144}."],
        ...            "critic": ["'Half as many' means 48 / 2 = 24, not 48 * 2."],
        ...            "reviser": [r"In May she sold 48 / 2 = 24, so 48 + 24 = \\boxed{72}."]}
        >>> team = AgentTeam.from_models({role: (FakeListChatModel(responses=r), "fake") for role, r in replies.items()})
        >>> context = AnnotationContext(agents=team, verify=verify_with(InProcessAnswerVerifier()), budget=Budget(max_attempts=3, max_reflections=2))
        >>> question = {"id": "clips", "question": "Natalia sold 48 clips in April and half as many in May. "
        ...             "How many clips did she sell in all?", "answer": "72"}
        >>> final = asyncio.run(graph.ainvoke(initial_state(question, "math"), context=context))
        >>> final["status"], final["accepted_stage"]
        ('accepted', 'reflection')
        >>> [(step["kind"], step["stage"], (step.get("verdict") or {}).get("reason")) for step in final["steps"]]
        [('solution', 'cot', 'numeric_mismatch'), ('critique', 'reflection', None), ('solution', 'reflection', 'equal')]
    """
    builder = StateGraph(AnnotationState, context_schema=context_schema)
    builder.add_node("solve", solve)
    builder.add_node("verify", verify)
    builder.add_node("confirm", confirm)
    builder.add_node("critique", critique)
    builder.add_node("revise", revise)
    builder.add_node("resample", resample)
    builder.add_node("program", program)
    builder.add_node("answer_guided", answer_guided)
    retry = {"critique": "critique", "resample": "resample", "program": "program", "answer_guided": "answer_guided", "end": END}

    builder.add_edge(START, "solve")
    # A model call that failed or spent the budget ends the question; else its attempt is checked.
    builder.add_conditional_edges("solve", after_call, {"next": "verify", "end": END})
    # verify decides once: confirm (k_sample multiple choice), the budget's next strategy (reflect, resample,
    # program, answer-guided; a repeated wrong answer skips reflect), or stop.
    builder.add_conditional_edges("verify", after_verify, {"confirm": "confirm", **retry})
    # k-1 more samples of the accepted attempt's prompt: all agree (accepted), or the loop goes on as for a wrong answer.
    builder.add_conditional_edges("confirm", after_verify, retry)
    # reflect: the Critic's review of the last attempt, then the Reviser's rewrite.
    builder.add_conditional_edges("critique", after_call, {"next": "revise", "end": END})
    # The loop: every new attempt (a revision, a fresh one, a program, the answer-guided one) goes back to the verifier.
    for attempt_node in ("revise", "resample", "program", "answer_guided"):
        builder.add_conditional_edges(attempt_node, after_call, {"next": "verify", "end": END})
    return builder.compile(checkpointer=checkpointer, name="annotation")


__all__ = ["build_annotation_graph"]
