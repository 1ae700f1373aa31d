"""`paddlehot demo`: the whole story, step by step, on the built-in demo model."""
