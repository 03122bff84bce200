"""Project Alpha: air-quality readings from a public API, scheduled file drops and web links."""
