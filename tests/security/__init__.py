"""Security tests: each reproduces an attack against a real server and checks it no longer gets in."""
