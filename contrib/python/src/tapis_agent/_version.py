# The package's version. A source checkout says 0.0.0.dev0; make python
# writes the project's version here in the copy it builds from.
__version__ = "0.0.0.dev0"
