"""Speech data for keyword spotting: synthetic corpus, real-corpus loaders, features."""
