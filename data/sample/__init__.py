"""The question samples shipped with scireflect (data files; see README.md here)."""
