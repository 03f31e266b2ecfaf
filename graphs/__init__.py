"""Graphs: LangGraph state machines that drive the agents and the verifiers."""
