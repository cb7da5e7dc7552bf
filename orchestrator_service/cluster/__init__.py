"""Several orchestrators sharing one store (README, "Several orchestrators"): who they are, the leases that say which of
them live, taking over the runs of one that died, and one merge at a time into each branch."""
