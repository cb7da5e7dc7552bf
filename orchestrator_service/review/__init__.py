"""Review and repair: review comments and requested changes, review agents, merge conflicts
resolved by merge tasks, delivery."""
