"""Method families: the shared machinery of methods that customise the cascade the same way."""
