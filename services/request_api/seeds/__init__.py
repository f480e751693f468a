"""The seeds' own APIs (docs/seeds/): each a mapping of its bodies and answers to ours."""
