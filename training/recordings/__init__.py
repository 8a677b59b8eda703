"""Where the corpus's recordings come from: the Debian packages and their splits, catalogues split into files."""
