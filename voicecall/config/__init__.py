"""The settings: one validated object read from the environment, how each value written as
text is read, the API clients it names, and the rule that no secret serves two settings."""
