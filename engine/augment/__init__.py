"""LLM feature augmentation (paper Eq. 1)."""
