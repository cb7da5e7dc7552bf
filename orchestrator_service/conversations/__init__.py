"""Agents that ask each other: questions stored as conversations, the recipient resumed in discuss
mode to answer, the asker resumed with the answer."""
