"""Graphs: the LangGraph state machines that drive the agents and the verifiers.

Read in this order: ``state.py`` (the question's state and the record of each model call),
``budget.py`` (the limits and the loop's one decision), ``context.py`` (what the nodes need),
``nodes.py`` (the nodes), then ``annotation.py`` / ``formal.py`` (the wiring, one screen each).
The graphs are given their models and verifiers by the runner (:mod:`scireflect.run`), and for
LangGraph Studio by :mod:`scireflect.run.studio`.
"""
