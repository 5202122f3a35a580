"""A stand-in for tapipy 1.9.0 in the tests (see ../README.md)."""
