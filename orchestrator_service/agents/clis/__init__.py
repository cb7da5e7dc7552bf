"""One adapter per agent CLI (issue 27)."""
